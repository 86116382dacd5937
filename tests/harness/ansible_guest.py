"""A systemd guest that Ansible reaches over SSH, the way it reaches a production server.

    with AnsibleGuest() as target:            # boots the guest, starts its sshd
        run = target.playbook("deploy.yml", extra_vars={"tandem_app_package": str(deb)})
        assert run.ok and run.recap["changed"] == 0

The guest is systemd_container.SystemdContainer's (an overlay of this machine's /, sharing its
network namespace, under the machine-wide guest lock). Inside it one more sshd runs, as the unit
tandem-ansible-sshd.service, listening on 127.0.0.1:<ssh_port> only (2222: the host's own 22 may
be taken, and the guest's ports are the host's), with a host key and a client key made for this
guest alone in a temporary folder. ansible-playbook runs on the host, in ansible/, with the local
inventory (ansible/inventories/local), told by environment variables to use SSH
(TANDEM_ANSIBLE_CONNECTION=ssh) and where: ANSIBLE_REMOTE_PORT, ANSIBLE_REMOTE_USER,
ANSIBLE_PRIVATE_KEY_FILE, and a known_hosts file holding the guest's host key (checked, as it would
be in production). The SSH connection master Ansible keeps open lives in the temporary folder
and is closed at the end; the guest is powered off and removed, the folder deleted.

`up` (used by ./up on a machine whose PID 1 is not systemd) deploys a package into such a guest
and keeps it up until Ctrl-C or SIGTERM:

    tests/harness/ansible_guest.py up --deb build-release/tandem_0.1.0_amd64.deb
"""

import argparse
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

if __package__ in (None, ""):
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.harness import procstat  # noqa: E402
from tests.harness.processes import raise_on_termination  # noqa: E402
from tests.harness.systemd_container import ContainerError, SystemdContainer  # noqa: E402
from tests.harness.lifecycle import Started  # noqa: E402
from tests.harness.waiting import wait_until  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO_ROOT / "ansible"
HOST = "tandem-local"  # the host of ansible/inventories/local
SSH_PORT = 2222
# What the local inventory's deployment listens on in the guest, that is on this machine: HAProxy's
# public frontend (every address) and admin listener, the two instances, and the monitoring
# (Prometheus, Alertmanager, the node exporter, the blackbox exporter).
DEPLOYMENT_PORTS = (80, 443, 8404, 3001, 3002, 9090, 9093, 9100, 9115)
# Plain HTTP served on :80 (not redirected to HTTPS), as behind another TLS terminator: the tests
# that load the deployment through :80 use it; HTTPS is deployed on :443 all the same, and
# tests/ansible/test_tls.py deploys the default, the redirect.
PLAIN_HTTP = {"tandem_lb_http_redirect": False}
GUEST_SSH_DIR = "/etc/ssh/tandem-ansible"
SSHD_UNIT = "tandem-ansible-sshd.service"
REQUIRED_TOOLS = ("ssh", "ssh-keygen", "ansible-playbook")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                   r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.MULTILINE)


@dataclass
class PlaybookRun:
    argv: list
    returncode: int
    output: str
    seconds: float

    @property
    def recap(self):
        """{"ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored"} of the
        local host's PLAY RECAP line (summed if a playbook prints several)."""
        recaps = self.recaps()
        if HOST not in recaps:
            raise AssertionError(f"no PLAY RECAP line for {HOST}:\n{self.output[-3000:]}")
        return recaps[HOST]

    def recaps(self):
        """{host: {"ok", "changed", ...}} of every host's PLAY RECAP line (summed per host if a
        playbook prints several)."""
        recaps = {}
        for match in RECAP.finditer(self.output):
            totals = recaps.setdefault(match.group(1), dict.fromkeys(
                ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored"), 0))
            for name, value in zip(totals, match.groups()[1:]):
                totals[name] += int(value)
        return recaps

    @property
    def ok(self):
        return self.returncode == 0

    def tail(self, lines=60):
        return "\n".join(self.output.splitlines()[-lines:])


def port_holder(port):
    """None if nothing listens on the port (any address), else what `ss` says holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Connections of an earlier run in TIME_WAIT do not count, a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))
            probe.listen(1)
            return None
        except OSError as error:
            holders = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     check=False).stdout.strip()
            return holders or error.strerror


def sshd_config(about, listen, pid_file, key_dir=GUEST_SSH_DIR):
    """The sshd_config of a test guest's own sshd: `listen` only, key login as root with the
    keys in key_dir only; `about` ends the header comment's first sentence."""
    return f"""\
# sshd for Ansible {about}
ListenAddress {listen}
HostKey {key_dir}/ssh_host_ed25519_key
AuthorizedKeysFile {key_dir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile {pid_file}
Subsystem sftp internal-sftp
"""


class AnsibleGuest(Started):
    """A booted guest with an sshd for Ansible; a context manager (everything goes on exit)."""

    def __init__(self, ssh_port=SSH_PORT, ports=DEPLOYMENT_PORTS, deb=None, base_vars=None):
        self.ssh_port = ssh_port
        # Extra variables of every playbook run, under each run's own (PLAIN_HTTP, say).
        self.base_vars = dict(base_vars or {})
        self.ports = tuple(ports)
        self.deb = deb
        self.guest = None
        self.workdir = None

    # --- lifecycle -------------------------------------------------------------------------

    def start(self):
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing or not pathlib.Path("/usr/sbin/sshd").exists():
            raise ContainerError(f"missing {', '.join(missing) or '/usr/sbin/sshd'}: install "
                                 "ansible, openssh-client and openssh-server "
                                 "(packaging/install-deps.sh test)")
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-ansible-"))
        (self.workdir / "cp").mkdir()
        (self.workdir / "tmp").mkdir()
        for name in ("id_ed25519", "ssh_host_ed25519_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                            f"tandem-ansible-{name}", "-f", str(self.workdir / name)],
                           check=True, stdin=subprocess.DEVNULL)
        host_key = (self.workdir / "ssh_host_ed25519_key.pub").read_text().split()
        (self.workdir / "known_hosts").write_text(
            f"[127.0.0.1]:{self.ssh_port} {host_key[0]} {host_key[1]}\n")

        # The repository, read-only at its own path: the local-connection test runs Ansible from
        # it inside the guest.
        self.guest = SystemdContainer(name_prefix="tandem-ansible", bind_ro=(REPO_ROOT,))
        self.guest.boot()  # Takes the machine-wide guest lock first.
        taken = {port: holder for port in self.ports + (self.ssh_port,)
                 if (holder := port_holder(port)) is not None}
        if taken:
            held = "; ".join(f"{port} by {holder}" for port, holder in taken.items())
            raise ContainerError(f"ports the deployment needs on this machine are taken: {held}")
        # A fresh server with HAProxy and the monitoring installed but not yet configured: the
        # tandem_lb and tandem_monitoring roles configure and start them.
        for unit in ("haproxy.service", "prometheus.service", "prometheus-alertmanager.service",
                     "prometheus-node-exporter.service", "prometheus-blackbox-exporter.service"):
            self.guest.unmask(unit)
        self._start_sshd()

    def _start_sshd(self):
        guest = self.guest
        guest.write(f"{GUEST_SSH_DIR}/ssh_host_ed25519_key",
                    (self.workdir / "ssh_host_ed25519_key").read_bytes(), mode=0o600)
        guest.write(f"{GUEST_SSH_DIR}/authorized_keys",
                    (self.workdir / "id_ed25519.pub").read_bytes(), mode=0o600)
        guest.write(f"{GUEST_SSH_DIR}/sshd_config", sshd_config(
            "in a tandem test guest (tests/harness/ansible_guest.py): loopback only, this\n"
            "# guest's throwaway keys only. The guest shares the host's network, hence not port 22.",
            f"127.0.0.1:{self.ssh_port}", "/run/tandem-ansible-sshd.pid"))
        guest.write(f"/etc/systemd/system/{SSHD_UNIT}", f"""\
[Unit]
Description=sshd for Ansible on 127.0.0.1:{self.ssh_port} (tandem test guest)

[Service]
ExecStartPre=/usr/sbin/sshd -t -f {GUEST_SSH_DIR}/sshd_config
ExecStart=/usr/sbin/sshd -D -e -f {GUEST_SSH_DIR}/sshd_config
RuntimeDirectory=sshd
RuntimeDirectoryPreserve=yes
""")
        guest.systemctl("daemon-reload")
        guest.systemctl("start", SSHD_UNIT)
        wait_until(lambda: subprocess.run(self.ssh_argv("true"), stdin=subprocess.DEVNULL,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                          text=True, timeout=20, check=False),
                   20, 0.2, "ssh into the guest", holds=lambda result: result.returncode == 0,
                   error=lambda result: ContainerError(
                       f"ssh into the guest fails: {result.stdout.strip()}\n"
                       + guest.journal("-u", SSHD_UNIT, "-n", "20")))

    def close(self):
        """Closes Ansible's SSH connection master, powers the guest off, removes the folder."""
        try:
            if self.workdir is not None and any((self.workdir / "cp").iterdir()):
                subprocess.run(self.ssh_argv() + ["-O", "exit"], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10,
                               check=False)
        finally:
            try:
                if self.guest is not None:
                    self.guest.remove()
            finally:
                if self.workdir is not None:
                    self._kill_masters()
                    shutil.rmtree(self.workdir, ignore_errors=True)

    def _kill_masters(self):
        """An SSH master still running on a control socket of ours (it exits by itself once the
        guest's sshd is gone; this is the belt to those braces)."""
        marker = str(self.workdir / "cp")
        for pid in procstat.pids():
            cmdline = procstat.cmdline(pid) or b""
            # A master renames itself "ssh: <control path> [mux]".
            if cmdline.startswith(b"ssh") and marker.encode() in cmdline:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass

    # --- reaching it -----------------------------------------------------------------------

    def ssh_options(self):
        return ["-o", f"UserKnownHostsFile={self.workdir / 'known_hosts'}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]

    def ssh_argv(self, *command):
        return (["ssh", "-i", str(self.workdir / "id_ed25519"), "-p", str(self.ssh_port),
                 "-o", f"ControlPath={self.workdir / 'cp'}/%C"] + self.ssh_options()
                + ["root@127.0.0.1"] + list(command))

    def ansible_env(self):
        """What ansible-playbook (run in ansible/) needs to reach the guest over SSH."""
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "TANDEM_ANSIBLE_CONNECTION": "ssh",
            "ANSIBLE_REMOTE_PORT": str(self.ssh_port),
            "ANSIBLE_REMOTE_USER": "root",
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.workdir / "id_ed25519"),
            "ANSIBLE_SSH_COMMON_ARGS": " ".join(self.ssh_options()),
            # Ansible's default control path, %(directory)s/%%C, in this folder.
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.workdir / "cp"),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        if self.deb is not None:
            env["TANDEM_DEB"] = str(pathlib.Path(self.deb).resolve())
        return env

    def env_file(self):
        """A shell file that sets ansible_env()'s variables, for running playbooks by hand."""
        path = self.workdir / "ansible.env"
        names = ("ANSIBLE_CONFIG", "TANDEM_ANSIBLE_CONNECTION", "ANSIBLE_REMOTE_PORT",
                 "ANSIBLE_REMOTE_USER", "ANSIBLE_PRIVATE_KEY_FILE", "ANSIBLE_SSH_COMMON_ARGS",
                 "ANSIBLE_SSH_CONTROL_PATH_DIR", "TANDEM_DEB")
        env = self.ansible_env()
        path.write_text("".join(f"export {name}={shlex.quote(env[name])}\n"
                                for name in names if name in env))
        return path

    def playbook(self, playbook, *args, extra_vars=None, timeout=900, echo=False):
        """Runs `ansible-playbook playbook args` in ansible/ against the guest; returns a
        PlaybookRun (never raises on a failed play: callers assert on it). echo: also stream
        the output to this process's stdout as it comes."""
        argv = ["ansible-playbook", playbook] + list(args)
        extra_vars = {**self.base_vars, **(extra_vars or {})}
        if extra_vars:
            argv += ["-e", json.dumps(extra_vars)]
        return run_playbook(argv, self.ansible_env(), timeout=timeout, echo=echo)


def run_playbook(argv, env, timeout=900, echo=False):
    """Runs ansible-playbook's argv in ansible/ with env; returns a PlaybookRun (never raises on a
    failed play: callers assert on it). echo: also stream the output to this process's stdout as
    it comes."""
    started = time.monotonic()
    lines = []
    with subprocess.Popen(argv, cwd=ANSIBLE_DIR, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          bufsize=1) as process:
        try:
            for line in process.stdout:
                lines.append(line)
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"{' '.join(argv)} ran over {timeout} s")
            process.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except BaseException:
            process.kill()
            process.wait()
            raise
    return PlaybookRun(argv, process.returncode, "".join(lines), time.monotonic() - started)


def front_lines(lb_port, https_port):
    """What `up` prints about the public frontend: its HTTPS address first, or its plain one
    when there is no HTTPS (port 0)."""
    if not https_port:
        return (f"  http://127.0.0.1:{lb_port}/api/whoami\n"
                f"      HAProxy's public frontend (port {lb_port} of every address; no HTTPS)")
    address = "https://127.0.0.1" + ("" if https_port == 443 else f":{https_port}")
    return (f"  {address}/api/whoami\n"
            f"      HAProxy's public frontend: HTTPS and HTTP/2 on port {https_port} of every\n"
            f"      address of this machine, with a self-signed certificate (curl -k, or --cacert\n"
            f"      with the guest's /etc/haproxy/tls/self-signed.crt); plain HTTP on port\n"
            f"      {lb_port} redirects there")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="tests/harness/ansible_guest.py",
        description="Deploy tandem with Ansible into a systemd guest over SSH; keep it up until "
                    "Ctrl-C.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot, deploy, and keep the guest up until Ctrl-C or SIGTERM")
    up.add_argument("--deb", required=True, help="the package to deploy (cpack -G DEB)")
    up.add_argument("--ssh-port", type=int, default=SSH_PORT,
                    help=f"loopback port of the guest's sshd ({SSH_PORT})")
    up.add_argument("--lb-port", type=int, default=80,
                    help="HAProxy's plain-HTTP port, which redirects to HTTPS (80)")
    up.add_argument("--https-port", type=int, default=443, help="HAProxy's HTTPS port (443)")
    args = parser.parse_args(argv)

    raise_on_termination()
    deb = pathlib.Path(args.deb).resolve()
    extra_vars = {"tandem_app_package": str(deb)}
    ports = list(DEPLOYMENT_PORTS)
    if args.lb_port != 80:
        extra_vars["tandem_lb_port"] = args.lb_port
        ports[ports.index(80)] = args.lb_port
    if args.https_port != 443:
        extra_vars["tandem_lb_https_port"] = args.https_port
        ports.remove(443)
        if args.https_port:
            ports.append(args.https_port)
    front = front_lines(args.lb_port, args.https_port)
    try:
        with AnsibleGuest(ssh_port=args.ssh_port, ports=ports, deb=deb) as target:
            print(f"up: guest {target.guest.name} booted, sshd on 127.0.0.1:{args.ssh_port}; "
                  "running ansible-playbook deploy.yml over SSH", flush=True)
            run = target.playbook("deploy.yml", extra_vars=extra_vars, echo=True)
            if not run.ok:
                print(f"up: ansible-playbook deploy.yml failed (exit {run.returncode}); "
                      "powering the guest off", file=sys.stderr)
                return 1
            env_file = target.env_file()
            ssh = " ".join(shlex.quote(part) for part in target.ssh_argv())
            print(f"""
up: tandem is deployed in a systemd guest (a systemd-nspawn container sharing this machine's
    network), by ansible-playbook over SSH, as on a server:
{front}
  http://127.0.0.1:8404/stats
      HAProxy's stats page (/metrics: Prometheus)
  http://127.0.0.1:9090/consoles/tandem.html
      the fleet's dashboard (Prometheus; alerts: http://127.0.0.1:9093, Alertmanager)
  {ssh} tandemctl logs --request REQUEST_ID
      one request's path, by the X-Request-ID it was answered with (by default only requests
      that went wrong are logged; every one with -e tandem_lb_log_requests=all
      -e tandem_app_access_log=all)
  {ssh}
      a shell in the guest
  . {env_file} && cd ansible && ansible-playbook rolling-restart.yml
      more playbooks against it (any of ansible/, with the local inventory)
Ctrl-C (or SIGTERM) powers the guest off: the instances drain, and nothing is left behind.""",
                  flush=True)
            while target.guest.nspawn.poll() is None:
                time.sleep(1)
            print("up: the guest has stopped by itself", file=sys.stderr)
            return 1
    except KeyboardInterrupt:
        print("up: stopped; the guest is powered off and removed", flush=True)
        return 0
    except ContainerError as error:
        print(f"up: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
