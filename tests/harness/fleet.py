"""Several servers on this one machine: systemd guests, each in a network namespace of its own on
a private bridge, each with an sshd, reached by Ansible over SSH as production servers are.

    with Fleet({"lb1.example.net": "10.77.0.10", "app1.example.net": "10.77.0.21"}) as fleet:
        fleet.host("app1.example.net").guest.run(["systemctl", "is-system-running"])
        fleet.playbook("deploy.yml", "-i", "inventories/example", "-i", generated)
        fleet.power_off("app1.example.net", force=True)     # a power cut; power_on() boots it

The network, made by the harness and by nothing else:
- one Linux bridge on this machine, BRIDGE, with HOST_ADDRESS on SUBNET (10.77.0.0/24): the test
  runner, Ansible and the load generators reach the guests through it; this machine forwards
  nothing for them (they have no route to it beyond the subnet);
- each guest is systemd_container.SystemdContainer's, booted with `--network-bridge`: its only
  interface besides lo is the veth `host0`, attached to the bridge. A unit of the guest's own,
  NETWORK_UNIT, gives host0 the guest's address (and the same MAC address at every boot, as a
  server's card keeps its own) before network.target, so that it is there again after a power
  cycle, before any service binds it; IPv6 is off on host0. No default route exists anywhere:
  check_isolated() asserts that each guest's routing tables hold the bridge's subnet alone and
  that an address outside it is unreachable.
- an sshd per guest (SSHD_UNIT, enabled at boot) on its address, port 22, with a host key made for
  that guest and one client key for the fleet, in a temporary folder; known_hosts holds every
  guest's host key, checked as in production (ansible_env()).

Units the host would boot but a fresh server should not run are masked, as for one guest; those a
role configures on a host (HAProxy on a balancer, say) are unmasked after its first boot (units=).

One fleet on this machine at a time, and no other guest meanwhile: start() takes the machine-wide
guest lock (systemd_container.take_lock) once for every guest, sweeps what killed runs left (their
guests, and the bridge, which only a live fleet holding the lock can own), and close() removes
everything: guests powered off (their instances drain), unmounted and deleted, the bridge deleted,
SSH masters closed, the folder removed, the lock released, also on an exception or an interrupt.
If the harness is killed outright (SIGKILL, a CTest timeout), a reaper process (parent-death
signal) that holds the lock removes this fleet's guests and the bridge; and the next fleet sweeps
whatever is still left.
"""

import ipaddress
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from . import procstat
from .ansible_guest import ANSIBLE_DIR, run_playbook, sshd_config
from .lifecycle import Started
from .systemd_container import (GUESTS_DIR, REPO_ROOT, ContainerError, SystemdContainer,
                                 _identity, _remove, check_host, sweep_stale, take_lock)
from .waiting import wait_until

BRIDGE = "tandem-fleet"
SUBNET = ipaddress.ip_network("10.77.0.0/24")
HOST_ADDRESS = "10.77.0.1"
NETWORK_UNIT = "tandem-fleet-network.service"
SSHD_UNIT = "tandem-fleet-sshd.service"
GUEST_SSH_DIR = "/etc/ssh/tandem-fleet"
REQUIRED_TOOLS = ("ip", "ssh", "ssh-keygen", "ansible-playbook")
SSH_TIMEOUT = 30.0
# An address outside the subnet that every guest must find unreachable (TEST-NET-1).
OUTSIDE = "192.0.2.1"
REAPER = """
import signal, sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from tests.harness.fleet import remove_fleet
def reap(*_):
    remove_fleet(sys.argv[2], sys.argv[3], sys.argv[4])
    sys.exit(0)
signal.signal(signal.SIGTERM, reap)
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
from tests.harness.systemd_container import _alive
if not _alive(sys.argv[2]):
    reap()
while True:
    signal.pause()
"""


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=check)


def bridge_exists(bridge=BRIDGE):
    return _ip("link", "show", "dev", bridge, check=False).returncode == 0


def remove_fleet(owner, bridge=BRIDGE, workdir=None):
    """Removes the guests owned by the process recorded as `owner` ("<pid> <start time>"), then
    the bridge and the fleet's folder (keys, SSH sockets): what the reaper does when the harness
    dies without doing it."""
    for directory in sorted(GUESTS_DIR.iterdir()) if GUESTS_DIR.is_dir() else []:
        try:
            recorded = (directory / "owner.pid").read_text().strip()
        except OSError:
            continue
        if recorded == owner:
            try:
                _remove(directory)
            except ContainerError as error:
                print(f"fleet reaper: {error}", file=sys.stderr)
    if bridge_exists(bridge):
        _ip("link", "delete", "dev", bridge, check=False)
    if workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def mac_address(address):
    """A locally administered MAC address made from the IPv4 address: the same at every boot."""
    return "02:74:" + ":".join(f"{octet:02x}" for octet in ipaddress.ip_address(address).packed)


class FleetHost:
    """One server of the fleet: its inventory name, its address, its guest."""

    def __init__(self, name, address, units=()):
        self.name = name
        self.short = name.split(".")[0]
        self.address = str(address)
        self.units = tuple(units)  # unmasked after the first boot: the roles configure them
        self.guest = None

    def run(self, argv, **kwargs):
        return self.guest.run(argv, **kwargs)

    @property
    def running(self):
        return self.guest is not None and self.guest.nspawn is not None \
            and self.guest.nspawn.poll() is None


class Fleet(Started):
    """The guests of `hosts` ({inventory name: address in SUBNET}) on the bridge; a context
    manager (started on enter, everything removed on exit). `units` ({name: units}): units to
    unmask on that host after its first boot."""

    def __init__(self, hosts, units=None, echo=False):
        units = units or {}
        self.hosts = {name: FleetHost(name, address, units.get(name, ()))
                      for name, address in hosts.items()}
        for host in self.hosts.values():
            address = ipaddress.ip_address(host.address)
            if address not in SUBNET or str(address) == HOST_ADDRESS \
                    or address in (SUBNET.network_address, SUBNET.broadcast_address):
                raise ValueError(f"{host.name}: {address} is not a guest address of {SUBNET}")
        if len({host.address for host in self.hosts.values()}) != len(self.hosts):
            raise ValueError(f"two hosts share an address: {hosts}")
        self.echo = echo
        self.workdir = None
        self.lock = None
        self.reaper = None
        self.swept = []
        self.timings = {}

    def host(self, name):
        return self.hosts[name]

    def __getitem__(self, name):
        return self.hosts[name]

    # --- lifecycle -------------------------------------------------------------------------

    def start(self):
        started = time.monotonic()
        check_host()
        missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
        if missing or not pathlib.Path("/usr/sbin/sshd").exists():
            raise ContainerError(f"missing {', '.join(missing) or '/usr/sbin/sshd'}: install "
                                 "iproute2, ansible, openssh-client and openssh-server "
                                 "(packaging/install-deps.sh test)")
        self.lock = take_lock()
        self.swept = sweep_stale()
        if bridge_exists():
            # Only a fleet holding the lock owns the bridge: this one is a killed run's.
            _ip("link", "delete", "dev", BRIDGE)
            self.swept.append(BRIDGE)
        taken = (_ip("-4", "route", "show", "to", "exact", str(SUBNET)).stdout
                 + _ip("-4", "-o", "address", "show", "to", str(SUBNET)).stdout).strip()
        if taken:
            raise ContainerError(f"{SUBNET} is already in use on this machine ({taken}); the "
                                 "fleet needs it for its own bridge")
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-fleet-"))
        for folder in ("cp", "tmp"):
            (self.workdir / folder).mkdir()
        # The reaper holds the lock until it has removed what a killed harness left.
        self.reaper = subprocess.Popen(
            ["setpriv", "--pdeathsig", "TERM", sys.executable, "-c", REAPER, str(REPO_ROOT),
             _identity(os.getpid()), BRIDGE, str(self.workdir)],
            stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=(self.lock.fileno(),))
        self._make_bridge()
        self._make_keys()
        self.timings["network"] = time.monotonic() - started
        for host in self.hosts.values():
            booted = time.monotonic()
            host.guest = SystemdContainer(
                name_prefix=f"fleet-{host.short}", lock=False, reaper=False,
                network_bridge=BRIDGE, setup=lambda root, host=host: self._setup_guest(host, root))
            host.guest.boot()
            if host.units:
                host.guest.unmask(*host.units)
            self.timings[f"boot {host.short}"] = time.monotonic() - booted
        for host in self.hosts.values():
            self._wait_reachable(host)
        self.timings["up"] = time.monotonic() - started

    def _make_bridge(self):
        _ip("link", "add", "name", BRIDGE, "type", "bridge")
        # No IPv6 on the bridge either: nothing but the subnet's IPv4 crosses it.
        pathlib.Path(f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6").write_text("1\n")
        _ip("address", "add", f"{HOST_ADDRESS}/{SUBNET.prefixlen}", "dev", BRIDGE)
        # A MAC address of its own: a bridge without one takes the lowest of its ports', which
        # changes when a guest's link comes or goes (a host powered off or on), and every guest's
        # ARP entry for this machine would then point nowhere for seconds, stalling the load.
        _ip("link", "set", "dev", BRIDGE, "address", mac_address(HOST_ADDRESS))
        _ip("link", "set", "dev", BRIDGE, "up")

    def _make_keys(self):
        def keygen(path, comment):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f",
                            str(path)], check=True, stdin=subprocess.DEVNULL)

        keygen(self.workdir / "id_ed25519", "tandem-fleet-client")
        known = []
        for host in self.hosts.values():
            keygen(self.workdir / f"{host.short}_host_key", f"tandem-fleet-{host.short}")
            kind, key = (self.workdir / f"{host.short}_host_key.pub").read_text().split()[:2]
            known.append(f"{host.address} {kind} {key}\n")
        (self.workdir / "known_hosts").write_text("".join(known))

    def _setup_guest(self, host, root):
        """Files of a guest, written before its first boot: its hostname, the unit that gives
        host0 its address, and its sshd."""

        def write(path, text, mode=0o644):
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text if isinstance(text, bytes) else text.encode())
            os.chmod(target, mode)

        def enable(unit):
            wants = root / "etc/systemd/system/multi-user.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            link = wants / unit
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(f"/etc/systemd/system/{unit}")

        write("/etc/hostname", f"{host.short}\n")
        write(f"/etc/systemd/system/{NETWORK_UNIT}", f"""\
# The test fleet's network (tests/harness/fleet.py): this host's address on host0, the veth that
# systemd-nspawn attached to the bridge {BRIDGE}. Nothing else: no default route, no IPv6.
[Unit]
Description=Address {host.address}/{SUBNET.prefixlen} on host0 (tandem test fleet)
DefaultDependencies=no
Wants=network-pre.target
Before=network-pre.target shutdown.target
Conflicts=shutdown.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/sbin/sysctl --quiet --write net.ipv6.conf.host0.disable_ipv6=1
ExecStart=/usr/sbin/ip link set dev host0 down
ExecStart=/usr/sbin/ip link set dev host0 address {mac_address(host.address)}
ExecStart=/usr/sbin/ip address add {host.address}/{SUBNET.prefixlen} dev host0
ExecStart=/usr/sbin/ip link set dev host0 up

[Install]
WantedBy=multi-user.target
""")
        enable(NETWORK_UNIT)
        write(f"{GUEST_SSH_DIR}/ssh_host_ed25519_key",
              (self.workdir / f"{host.short}_host_key").read_bytes(), mode=0o600)
        write(f"{GUEST_SSH_DIR}/authorized_keys",
              (self.workdir / "id_ed25519.pub").read_bytes(), mode=0o600)
        write(f"{GUEST_SSH_DIR}/sshd_config", sshd_config(
            "on a tandem test fleet's host (tests/harness/fleet.py): this host's address\n"
            "# only, the fleet's throwaway keys only.", f"{host.address}:22",
            "/run/tandem-fleet-sshd.pid", GUEST_SSH_DIR))
        write(f"/etc/systemd/system/{SSHD_UNIT}", f"""\
[Unit]
Description=sshd for Ansible on {host.address}:22 (tandem test fleet)
Requires={NETWORK_UNIT}
After={NETWORK_UNIT}

[Service]
ExecStartPre=/usr/sbin/sshd -t -f {GUEST_SSH_DIR}/sshd_config
ExecStart=/usr/sbin/sshd -D -e -f {GUEST_SSH_DIR}/sshd_config
RuntimeDirectory=sshd
RuntimeDirectoryPreserve=yes

[Install]
WantedBy=multi-user.target
""")
        enable(SSHD_UNIT)

    def _wait_reachable(self, host):
        """The guest's network is up and isolated, and its sshd lets the fleet's key in."""
        guest = host.guest
        state = guest.show(NETWORK_UNIT, "ActiveState", "Result")
        if state.get("ActiveState") != "active":
            raise ContainerError(f"{host.name}: {NETWORK_UNIT} is {state}:\n"
                                 + guest.journal("-u", NETWORK_UNIT, "-n", "20"))
        self.check_isolated(host)
        wait_until(lambda: subprocess.run(self.ssh_argv(host.name, "true"),
                                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, timeout=20,
                                          check=False),
                   SSH_TIMEOUT, 0.2, f"ssh into {host.name}",
                   holds=lambda result: result.returncode == 0,
                   error=lambda result: ContainerError(
                       f"ssh into {host.name} ({host.address}) fails: {result.stdout.strip()}\n"
                       + guest.journal("-u", SSHD_UNIT, "-n", "20")))

    def check_isolated(self, host):
        """Asserts that the host's routing tables hold the bridge's subnet alone: IPv4 routes on
        host0 only within SUBNET, loopback's own, no default route in any table, no IPv6 route
        beyond loopback, and OUTSIDE unreachable. Returns the main IPv4 table's lines."""
        guest = host.guest
        routes4 = guest.run(["ip", "-4", "route", "show", "table", "all"]).stdout.splitlines()
        routes6 = guest.run(["ip", "-6", "route", "show", "table", "all"]).stdout.splitlines()
        main = guest.run(["ip", "-4", "route", "show", "table", "main"]).stdout.splitlines()
        problems = [f"IPv4: {line}" for line in routes4 if not self._allowed_route(line)]
        problems += [f"IPv6: {line}" for line in routes6
                     if line.split()[0] == "default" or " dev lo" not in line]
        expected = f"{SUBNET} dev host0 proto kernel scope link src {host.address}"
        if [line.strip() for line in main] != [expected]:
            problems.append(f"main IPv4 table is {main}, not [{expected!r}]")
        outside = guest.run(["ip", "route", "get", OUTSIDE], check=False)
        if outside.returncode == 0:
            problems.append(f"{OUTSIDE} is routable: {outside.stdout.strip()}")
        if problems:
            raise ContainerError(f"{host.name} reaches beyond {SUBNET}: " + "; ".join(problems))
        return [line.strip() for line in main]

    @staticmethod
    def _allowed_route(line):
        words = line.split()
        if not words or words[0] == "default" or "via" in words:
            return False
        dev = words[words.index("dev") + 1] if "dev" in words else ""
        # local/broadcast entries of the local table name an address first; the rest a prefix.
        target = words[1] if words[0] in ("local", "broadcast", "unicast") else words[0]
        if dev == "lo":
            return ipaddress.ip_network(target, strict=False).subnet_of(
                ipaddress.ip_network("127.0.0.0/8"))
        return dev == "host0" and ipaddress.ip_network(target, strict=False).subnet_of(SUBNET)

    def close(self):
        """Powers every guest off (at once, then waits for each), removes them, deletes the
        bridge, closes the SSH masters, releases the lock. Safe to call at any point of start()."""
        try:
            running = [host for host in self.hosts.values() if host.running
                       and host.guest.init_pid is not None]
            for host in running:
                host.guest.run(["systemctl", "poweroff", "--no-block"], check=False, timeout=10)
            for host in self.hosts.values():
                if host.guest is not None:
                    host.guest.remove()
        finally:
            try:
                if bridge_exists() and self.reaper is not None:
                    _ip("link", "delete", "dev", BRIDGE, check=False)
                if self.workdir is not None:
                    self._kill_masters()
                    shutil.rmtree(self.workdir, ignore_errors=True)
            finally:
                if self.reaper is not None:
                    self.reaper.kill()
                    self.reaper.wait()
                    self.reaper = None
                if self.lock is not None:
                    self.lock.close()
                    self.lock = None

    def _kill_masters(self):
        """SSH connection masters still running on a control socket of ours (they exit by
        themselves once the guests' sshds are gone)."""
        marker = str(self.workdir / "cp").encode()
        for pid in procstat.pids():
            cmdline = procstat.cmdline(pid) or b""
            if cmdline.startswith(b"ssh") and marker in cmdline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # --- power -----------------------------------------------------------------------------

    def power_off(self, name, force=False):
        """Powers one host off, keeping its disk (see SystemdContainer.power_off): force is a
        power cut, else a clean shutdown. A machine that loses power falls silent at once: no
        reset for a connection its dead processes held, no refusal of a new one. So for a cut
        the host's link goes down first, then every process is killed at once (else its kernel,
        which outlives its processes here by some milliseconds, would answer for them)."""
        host = self.hosts[name]
        if force:
            host.guest.run(["ip", "link", "set", "dev", "host0", "down"], timeout=10)
        host.guest.power_off(force=force)

    def power_on(self, name):
        """Boots one host again; returns once its network is up and isolated and sshd answers."""
        host = self.hosts[name]
        host.guest.power_on()
        self._wait_reachable(host)

    # --- reaching the hosts ----------------------------------------------------------------

    def ssh_options(self):
        return ["-o", f"UserKnownHostsFile={self.workdir / 'known_hosts'}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=yes",
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]

    def ssh_argv(self, name, *command):
        return (["ssh", "-i", str(self.workdir / "id_ed25519"),
                 "-o", f"ControlPath={self.workdir / 'cp'}/%C"] + self.ssh_options()
                + [f"root@{self.hosts[name].address}"] + list(command))

    def ansible_env(self):
        """What ansible-playbook (run in ansible/) needs to reach the fleet over SSH: root, the
        fleet's key, and known_hosts with every guest's host key, checked."""
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
            "ANSIBLE_REMOTE_USER": "root",
            "ANSIBLE_PRIVATE_KEY_FILE": str(self.workdir / "id_ed25519"),
            "ANSIBLE_SSH_COMMON_ARGS": " ".join(self.ssh_options()),
            "ANSIBLE_SSH_CONTROL_PATH_DIR": str(self.workdir / "cp"),
            # One SSH connection per host for the whole run (the playbooks follow each other
            # minutes apart), uncompressed on the bridge: Ansible's own defaults otherwise.
            "ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=900s",
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        return env

    def playbook(self, playbook, *args, timeout=900):
        """Runs `ansible-playbook playbook args` in ansible/ against the fleet; returns a
        ansible_guest.PlaybookRun (never raises on a failed play: callers assert on it)."""
        return run_playbook(["ansible-playbook", playbook, *args], self.ansible_env(),
                            timeout=timeout, echo=self.echo)

