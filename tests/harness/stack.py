"""The local stack: HAProxy (from haproxy/haproxy.cfg.j2) in front of N tandem-server instances,
all on loopback, all in one temporary directory, all stopped when the stack ends.

    with Stack(instances=2) as stack:          # ports: free ones unless given
        stack.url("/api/whoami")               # http://127.0.0.1:<lb port>/api/whoami
        stack.api.set_server_state(stack.backend, "app-1", "drain")
        stack.stop_instance("app-1", signal.SIGKILL)
        stack.start_instance("app-1")

From a shell (tests/harness/stack is the same thing as a script):

    python3 -m tests.harness.stack up --instances 2 --lb-port 8080 --first-port 3001

brings the stack up, prints where everything is, and tears it down on Ctrl-C or SIGTERM.
"""

import argparse
import os
import pathlib
import resource
import shutil
import signal
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.request

from . import config, tls
from .processes import Process, raise_on_termination, tail
from .runtime_api import RuntimeApi, RuntimeApiError
from .waiting import wait_until
from .watchdog import WatchdogMonitor

LOOPBACK = "127.0.0.1"
# Where the harness looks for tandem-server when neither --server-bin nor TANDEM_SERVER_BIN says.
SERVER_BIN_CANDIDATES = ("build-release/server/tandem-server", "build/server/tandem-server",
                         "build-stack/server/tandem-server")
# The drain grace given to instances: above the worst time HAProxy takes to mark a draining
# instance DOWN with the template's checks (inter + (fall - 1) x fastinter = 1.25 s) and above
# docs/design.md's fall x inter (2 s); the same as tandem-server's default.
DRAIN_GRACE = "3s"
# Bounds a drain that does not finish by itself (a connection that never closes).
DRAIN_TIMEOUT = "6s"
START_TIMEOUT = 10.0
# Template variables a local stack sets itself (Stack._configure): the addresses, ports, paths and
# logging of a run on loopback. What a caller wants to vary (bench/scaling.sh --set) is the rest.
OWN_VARIABLES = frozenset({
    "tandem_lb_bind_address", "tandem_lb_port", "tandem_lb_stats_bind",
    "tandem_lb_backend_servers", "tandem_lb_admin_socket", "tandem_lb_state_file",
    "tandem_lb_chroot", "tandem_lb_user", "tandem_lb_group", "tandem_lb_log_targets",
    "tandem_lb_errorfiles_dir", "tandem_lb_https_port", "tandem_lb_tls_dir"})

# Overrides for tests whose many simulated clients (hundreds of connections at once, dozens of
# sessions, each answer that sets the session cookie counting as a new one) all come from
# 127.0.0.1: HAProxy's per-source limits would rightly take them for one client, as they would a
# crowd behind one NAT address. 0 switches each limit off. The limits themselves are tested by
# tests/stack/test_abuse_*.py.
ONE_ADDRESS_CROWD = {"tandem_lb_source_maxconn": 0, "tandem_lb_source_request_rate": 0,
                     "tandem_lb_source_session_rate": 0, "tandem_lb_source_connection_rate": 0}


class StackError(RuntimeError):
    pass


def free_ports(count):
    """count distinct loopback ports that were free a moment ago (bound to port 0 together)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def find_server_bin(explicit=None):
    """The binary named by the caller or TANDEM_SERVER_BIN (which must then exist: a wrong path
    is an error, never a silent fall-back to another build), else the first build found."""
    return config.find_binary("tandem-server", explicit or os.environ.get("TANDEM_SERVER_BIN"),
                              SERVER_BIN_CANDIDATES, StackError,
                              "pass --server-bin or set TANDEM_SERVER_BIN")


class Instance:
    """One tandem-server instance of the stack; `process` is None while it is stopped."""

    def __init__(self, instance_id, port, log_path):
        self.id = instance_id
        self.port = port
        self.log_path = log_path
        self.process = None
        self.exit_codes = []  # Of every run that ended, in order.
        self.agent_port = None  # Its --agent-port, when the template's agent checks are on.

    def url(self, path="/"):
        return f"http://{LOOPBACK}:{self.port}{path}"


class Stack:
    """HAProxy and N tandem-server instances; a context manager (up on enter, down on exit).

    Instances are named app-1..app-N on ports first_port.. (free ports when not given).
    `overrides` are template variables on top of haproxy/defaults.yml and the stack's own;
    `extra_servers` are more backend servers ({id, host, port}) that the caller runs itself.
    `session_store` is every instance's --session-store (memory when None: the server's
    default); `server_args` are more flags for every instance. rsa_certificate: HTTPS serves an
    RSA certificate beside the ECDSA one (for clients that take no ECDSA). With `watchdog`, the
    instances
    get NOTIFY_SOCKET and WATCHDOG_USEC as under systemd, and `stack.watchdog` (a
    tests.harness.watchdog.WatchdogMonitor) records their pings.
    """

    def __init__(self, instances=2, lb_port=None, first_port=None, stats_port=None,
                 server_bin=None, overrides=None, extra_servers=(), server_args=(),
                 session_store=None, workdir=None, keep_workdir=False, watchdog=False,
                 rsa_certificate=False):
        self.server_bin = find_server_bin(server_bin) if instances else None
        self.session_store = session_store
        self.server_args = list(server_args)
        if session_store:
            self.server_args += ["--session-store", session_store]
        self.keep_workdir = keep_workdir
        self._own_workdir = workdir is None
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="tandem-stack-"))
        try:
            self._configure(instances, lb_port, first_port, stats_port, overrides, extra_servers)
        except BaseException:
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self.api = RuntimeApi(self.admin_socket)
        self.haproxy = None
        self.certificate = None  # The PEM HTTPS serves, once up() has written it.
        self.rsa_certificate = rsa_certificate  # An RSA one too (tls.write_self_signed).
        self.watchdog = WatchdogMonitor(self.workdir / "notify.sock") if watchdog else None

    def _configure(self, instances, lb_port, first_port, stats_port, overrides, extra_servers):
        self.workdir.mkdir(parents=True, exist_ok=True)
        # With the template's agent checks on, each instance answers them on a port of its own.
        agents = config.variables({k: v for k, v in (overrides or {}).items()
                                   if k == "tandem_lb_agent_check"})["tandem_lb_agent_check"]
        ports = iter(free_ports(instances * (2 if agents else 1) + 3))
        self.lb_port = lb_port or next(ports)
        self.https_port = next(ports)
        self.stats_port = stats_port or next(ports)
        self.instances = {}
        for number in range(1, instances + 1):
            port = first_port + number - 1 if first_port else next(ports)
            instance_id = f"app-{number}"
            self.instances[instance_id] = Instance(instance_id, port,
                                                   self.workdir / f"{instance_id}.log")
        servers = [{"id": i.id, "host": LOOPBACK, "port": i.port}
                   for i in self.instances.values()]
        if agents:
            for server, instance in zip(servers, self.instances.values()):
                instance.agent_port = server["agent_port"] = next(ports)
        servers += list(extra_servers)
        self.admin_socket = self.workdir / "admin.sock"
        self.state_file = self.workdir / "server-state"
        self.config_path = self.workdir / "haproxy.cfg"
        self.haproxy_log = self.workdir / "haproxy.log"
        self.errorfiles_dir = self.workdir / "errors"
        # HTTPS on a port of its own with a self-signed certificate for localhost and 127.0.0.1
        # (tls.py; the tandem_lb role makes the same kind when an inventory gives none).
        self.tls_dir = self.workdir / "tls"
        self.ca_file = self.tls_dir / "ca.pem"  # The certificate alone, for clients to trust.
        # What a local run changes from the deployment defaults, and nothing else.
        local = {
            "tandem_lb_bind_address": LOOPBACK,
            "tandem_lb_port": self.lb_port,
            "tandem_lb_stats_bind": f"{LOOPBACK}:{self.stats_port}",
            "tandem_lb_backend_servers": servers,
            "tandem_lb_admin_socket": str(self.admin_socket),
            "tandem_lb_state_file": str(self.state_file),
            "tandem_lb_chroot": "",
            "tandem_lb_user": "",
            "tandem_lb_group": "",
            "tandem_lb_log_targets": ["stdout format raw local0"],
            "tandem_lb_errorfiles_dir": str(self.errorfiles_dir),
            "tandem_lb_https_port": self.https_port,
            "tandem_lb_tls_dir": str(self.tls_dir),
            # The tests speak plain HTTP to url() as to a deployment behind another TLS
            # terminator, and HTTPS to https_url(); tests/stack/test_tls.py turns the redirect on.
            "tandem_lb_http_redirect": False,
            "tandem_lb_maxconn": _maxconn_within_fd_limit(
                config.load_defaults()["tandem_lb_maxconn"]),
        }
        assert OWN_VARIABLES <= local.keys(), OWN_VARIABLES - local.keys()
        local.update(overrides or {})
        self.variables = config.variables(local)
        self.backend = self.variables["tandem_lb_backend_name"]

    # --- lifecycle -------------------------------------------------------------------------

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()

    def up(self):
        """Renders the errorfiles and the configuration and validates it, starts every instance
        and waits for its /health, starts HAProxy and waits until it sees every server UP."""
        try:
            config.render_errorfiles(self.variables)
            if int(self.variables["tandem_lb_https_port"]) > 0:
                self.certificate = tls.write_self_signed(self.tls_dir,
                                                         rsa_too=self.rsa_certificate)
            self.config_path.write_text(config.render(self.variables))
            config.validate(self.config_path)
            if self.watchdog is not None:
                self.watchdog.start()
            for instance_id in self.instances:
                self.start_instance(instance_id, wait=False)
            for instance in self.instances.values():
                self.wait_instance_healthy(instance.id)
            self.haproxy = Process("haproxy", ["haproxy", "-W", "-db", "-f", str(self.config_path)],
                                   self.haproxy_log)
            self.wait_all_up()
        except BaseException:
            self.down()
            raise
        return self

    def down(self, grace=None, remove_workdir=True):
        """Stops HAProxy and every instance (SIGTERM, SIGKILL after the grace) and reaps them;
        then removes the work directory (unless kept, or remove_workdir is False: call
        remove_workdir() later). Returns {name: exit code} of the processes that were still
        running (a drained instance exits 0)."""
        processes = []
        if self.haproxy is not None:
            processes.append(("haproxy", self.haproxy))
        processes += [(i.id, i.process) for i in self.instances.values() if i.process]
        # An instance drains for DRAIN_GRACE after SIGTERM and exits by DRAIN_TIMEOUT at the
        # latest; SIGKILL comes only after that.
        if grace is None:
            grace = _seconds(DRAIN_TIMEOUT) + 1.0
        running = {name for name, process in processes if process.alive()}
        for _, process in processes:
            process.begin_stop()
        deadline = time.monotonic() + grace
        codes = {}
        for name, process in processes:
            code = process.finish_stop(deadline)
            if name in running:
                codes[name] = code
            if name in self.instances:
                self.instances[name].exit_codes.append(code)
                self.instances[name].process = None
        self.haproxy = None
        if self.watchdog is not None:
            self.watchdog.close()
        if remove_workdir:
            self.remove_workdir()
        return codes

    def remove_workdir(self):
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # --- instances -------------------------------------------------------------------------

    def start_instance(self, instance_id, wait=False):
        """Starts an instance (again) on its port; with wait, until its own /health says 200."""
        instance = self.instances[instance_id]
        if instance.process is not None:
            if instance.process.alive():
                raise StackError(f"{instance_id} is already running (pid {instance.process.pid})")
            self._reap(instance)
        argv = [self.server_bin, "--port", str(instance.port), "--bind", LOOPBACK,
                "--id", instance.id, "--drain-grace", DRAIN_GRACE,
                "--drain-timeout", DRAIN_TIMEOUT] + self.server_args
        if instance.agent_port:
            argv += ["--agent-port", str(instance.agent_port)]
        env = {**os.environ, **self.watchdog.env()} if self.watchdog is not None else None
        instance.process = Process(instance.id, argv, instance.log_path, env=env)
        if wait:
            self.wait_instance_healthy(instance_id)
        return instance.process

    def stop_instance(self, instance_id, sig=signal.SIGTERM):
        """Sends sig to the instance (SIGTERM: it drains; SIGKILL: it dies). Does not wait."""
        instance = self.instances[instance_id]
        if instance.process is None:
            raise StackError(f"{instance_id} is not running")
        instance.process.send(sig)
        return instance.process

    def wait_instance_exit(self, instance_id, timeout):
        """Waits for the instance's process to end and reaps it; returns its exit code."""
        instance = self.instances[instance_id]
        if instance.process is None:
            return instance.exit_codes[-1] if instance.exit_codes else None
        if not instance.process.wait(timeout):
            raise StackError(f"{instance_id} did not exit within {timeout} s:\n"
                             + tail(instance.log_path))
        return self._reap(instance)

    def _reap(self, instance):
        code = instance.process.finish_stop(time.monotonic())
        instance.exit_codes.append(code)
        instance.process = None
        return code

    def wait_instance_healthy(self, instance_id, timeout=START_TIMEOUT):
        instance = self.instances[instance_id]

        def healthy():
            if instance.process is None or instance.process.exited():
                raise StackError(f"{instance_id} exited during start-up:\n"
                                 + tail(instance.log_path))
            with urllib.request.urlopen(instance.url("/health"), timeout=1.0) as answer:
                return answer.status

        wait_until(healthy, timeout, 0.05, f"{instance_id} to answer /health",
                   holds=lambda status: status == 200, ignore=(OSError, urllib.error.URLError),
                   error=lambda _: StackError(f"{instance_id} did not answer /health within "
                                              f"{timeout} s:\n" + tail(instance.log_path)))

    # --- HAProxy ---------------------------------------------------------------------------

    def url(self, path="/"):
        return f"http://{LOOPBACK}:{self.lb_port}{path}"

    def https_url(self, path="/"):
        return f"https://{LOOPBACK}:{self.https_port}{path}"

    def stats_url(self, path="/"):
        return f"http://{LOOPBACK}:{self.stats_port}{path}"

    def server_ids(self):
        return [server["id"] for server in self.variables["tandem_lb_backend_servers"]]

    def wait_all_up(self, timeout=START_TIMEOUT):
        """Waits until HAProxy's checks have passed for every server (status UP, last check
        L7OK): HAProxy shows servers UP before their first check, so the status alone is not
        enough."""

        def checks():
            if self.haproxy is None or self.haproxy.exited():
                raise StackError("haproxy exited during start-up:\n" + tail(self.haproxy_log))
            rows = {row["svname"]: row for row in self.api.show_stat()
                    if row["pxname"] == self.backend}
            return {server: (rows[server]["status"], rows[server]["check_status"])
                    for server in self.server_ids() if server in rows}

        def all_up(seen):
            return len(seen) == len(self.server_ids()) and all(
                status == "UP" and check == "L7OK" for status, check in seen.values())

        wait_until(checks, timeout, 0.05, "every server UP in HAProxy", holds=all_up,
                   ignore=(OSError, RuntimeApiError),
                   error=lambda last: StackError(f"HAProxy does not see every server UP within "
                                                 f"{timeout} s: {last}\n"
                                                 + tail(self.haproxy_log)))

    def wait_status(self, server, predicate, timeout):
        """Waits until predicate(status of server) holds; returns the status."""
        return wait_until(lambda: self.api.server_status(self.backend, server), timeout, 0.05,
                          f"{self.backend}/{server} to change status", holds=predicate,
                          error=lambda status: StackError(f"{self.backend}/{server} is still "
                                                          f"{status} after {timeout} s"))

    def save_server_state(self):
        """Writes `show servers state` to the state file, as a reload must do first."""
        text = self.api.command("show servers state")
        if not text.startswith("1"):
            raise StackError(f"show servers state answered {text[:200]!r}")
        self.state_file.write_text(text)

    def reload(self, timeout=START_TIMEOUT):
        """Reloads HAProxy the way `systemctl reload haproxy` does (haproxy -c, then SIGUSR2 to
        the master), after saving the server states; waits for the new worker to answer."""
        self.save_server_state()
        config.validate(self.config_path)
        old_pid = self.api.worker_pid()
        self.haproxy.send(signal.SIGUSR2)
        wait_until(self.api.worker_pid, timeout, 0.05, "a new HAProxy worker",
                   holds=lambda pid: pid != old_pid, ignore=(OSError, RuntimeApiError),
                   error=lambda _: StackError(f"HAProxy did not reload within {timeout} s:\n"
                                              + tail(self.haproxy_log)))

    def tandemctl_config(self):
        """A folder for `tandemctl --config-dir` that describes this stack as /etc/tandem
        describes a host: one <port>.env per instance (TANDEM_ID, TANDEM_BIND) and tandemctl.conf
        (the runtime socket, backend, frontend and cookie; the instances are not systemd units).
        Written once into the work directory; returns its path."""
        folder = self.workdir / "tandemctl"
        folder.mkdir(exist_ok=True)
        for instance in self.instances.values():
            (folder / f"{instance.port}.env").write_text(
                f"TANDEM_ID={instance.id}\nTANDEM_BIND={LOOPBACK}\n")
        (folder / "tandemctl.conf").write_text(
            f"TANDEM_LB_SOCKET={self.admin_socket}\nTANDEM_LB_BACKEND={self.backend}\n"
            f"TANDEM_LB_URL=http://{LOOPBACK}:{self.lb_port}\n"
            f"TANDEM_LB_COOKIE={self.variables['tandem_lb_cookie_name']}\nTANDEM_SYSTEMD=no\n")
        return folder

    def describe(self):
        lines = [f"HAProxy         {self.url()}  (config {self.config_path})",
                 f"HTTPS           {self.https_url()}  (self-signed: {self.tls_dir})",
                 f"stats           {self.stats_url(self.variables['tandem_lb_stats_uri'])}",
                 f"prometheus      {self.stats_url('/metrics')}",
                 f"runtime API     {self.admin_socket}  (backend {self.backend})",
                 f"HAProxy log     {self.haproxy_log}"]
        for instance in self.instances.values():
            pid = instance.process.pid if instance.process else "-"
            lines.append(f"{instance.id:<15} {instance.url()}  pid {pid}  log {instance.log_path}")
        lines.append(f"session store   {self.session_store or 'memory'}")
        return "\n".join(lines)


def _maxconn_within_fd_limit(wanted):
    """HAProxy refuses to start when it cannot raise its descriptor limit to about twice its
    maxconn; a local run stays within this machine's hard limit (systemd gives haproxy.service
    a far higher one)."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return wanted
    return max(256, min(wanted, (hard - 256) // 2))


def _seconds(duration):
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    return float(duration.rstrip("s"))


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="tests/harness/stack",
        description="Run HAProxy and N tandem-server instances on loopback until Ctrl-C.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="bring the stack up and keep it up until Ctrl-C or SIGTERM")
    up.add_argument("--instances", type=int, default=2, help="tandem-server instances (2)")
    up.add_argument("--lb-port", type=int, help="HAProxy's public port (default: a free one)")
    up.add_argument("--first-port", type=int,
                    help="port of app-1; app-N gets first-port + N - 1 (default: free ones)")
    up.add_argument("--stats-port", type=int, help="admin listener port (default: a free one)")
    up.add_argument("--server-bin", help="tandem-server binary (default: $TANDEM_SERVER_BIN, "
                                         "else build-release/, build/, build-stack/)")
    up.add_argument("--workdir", help="directory for config, socket and logs (default: a new "
                                      "temporary one, removed at the end)")
    up.add_argument("--keep", action="store_true", help="keep the temporary directory")
    store = up.add_mutually_exclusive_group()
    store.add_argument("--session-store", help="every instance's --session-store "
                                               "(memory, or redis://host:port[/db])")
    store.add_argument("--redis", action="store_true",
                       help="also run a redis-server on a free loopback port (no persistence) "
                            "and keep the sessions there")
    args = parser.parse_args(argv)
    if args.instances < 1:
        parser.error("--instances must be at least 1")

    raise_on_termination()
    redis = None
    try:
        session_store = args.session_store
        if args.redis:
            from .redis import RedisServer  # Imports this module: only when asked for.
            redis = RedisServer()
            redis.start()
            session_store = redis.url
            print(f"stack: redis-server on {redis.url}, log {redis.log_path}", flush=True)
        stack = Stack(instances=args.instances, lb_port=args.lb_port,
                      first_port=args.first_port, stats_port=args.stats_port,
                      server_bin=args.server_bin, session_store=session_store,
                      workdir=args.workdir, keep_workdir=args.keep)
        with stack:
            print("stack: up; every server UP in HAProxy\n" + stack.describe(), flush=True)
            print(f"stack: try  curl -si {stack.url('/api/whoami')}\n"
                  "stack: Ctrl-C (or SIGTERM) stops everything", flush=True)
            reported = set()
            while True:
                if stack.haproxy.exited():
                    print(f"stack: haproxy exited; see {stack.haproxy_log}", file=sys.stderr)
                    return 1
                # An instance that ends (killed by hand to watch a failover, say) is reported
                # once; the stack stays up.
                for instance in stack.instances.values():
                    process = instance.process
                    if process and process.exited() and process.pid not in reported:
                        reported.add(process.pid)
                        print(f"stack: {instance.id} (pid {process.pid}) exited; "
                              f"log {instance.log_path}", file=sys.stderr, flush=True)
                time.sleep(0.5)
    except KeyboardInterrupt:
        print("stack: stopped", flush=True)
        return 0
    except (StackError, ValueError) as error:
        print(f"stack: {error}", file=sys.stderr)
        return 1
    finally:
        if redis is not None:
            redis.close()


if __name__ == "__main__":
    sys.exit(main())
