"""tandem's Debian package installed in a systemd guest, and what the system tests need to drive
and observe it (the `system` fixture in conftest.py builds one per test module).

The guest shares the host's network namespace: its instances listen on the host's
127.0.0.1:3001 and :3002 (the ports the package's env files ship), so those must be free; HAProxy
listens on free loopback ports instead of :80 and :8404; the load comes from the host.
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.harness import config
from tests.harness.runtime_api import RuntimeApi, RuntimeApiError
from tests.harness.stack import ONE_ADDRESS_CROWD

LOOPBACK = "127.0.0.1"
# What the package ships (packaging/etc/tandem/*.env) and the template's default servers.
INSTANCES = {"app-1": 3001, "app-2": 3002}
ADMIN_SOCKET = "/run/haproxy/admin.sock"  # the template's default (tandem_lb_admin_socket)
GUEST_DEB = "/var/tmp/tandem.deb"


def package_path(name="tandem"):
    """The .deb under test: for the server package $TANDEM_DEB if set, else
    <name>_$TANDEM_VERSION_*.deb in $TANDEM_BUILD_DIR (what CTest passes); `name` tandem-dev for
    the development package. Fails loudly when it is not there."""
    explicit = os.environ.get("TANDEM_DEB") if name == "tandem" else None
    if explicit:
        path = pathlib.Path(explicit)
    else:
        build_dir = os.environ.get("TANDEM_BUILD_DIR")
        version = os.environ.get("TANDEM_VERSION")
        if not build_dir or not version:
            pytest.fail("set TANDEM_DEB, or TANDEM_BUILD_DIR and TANDEM_VERSION (CTest does)")
        matches = sorted(pathlib.Path(build_dir).glob(f"{name}_{version}_*.deb"))
        if len(matches) != 1:
            pytest.fail(f"expected one {name}_{version}_*.deb in {build_dir}, found "
                        f"{[m.name for m in matches]}: run `cpack -G DEB` there first")
        path = matches[0]
    if not path.is_file():
        pytest.fail(f"no package at {path}")
    return path


def expected_version():
    version = os.environ.get("TANDEM_VERSION")
    if version:
        return version
    # A package named by hand: its own version field.
    return subprocess.run(["dpkg-deb", "-f", str(package_path()), "Version"], check=True,
                          text=True, stdout=subprocess.PIPE).stdout.strip()


def build_next_package():
    """The same tree built as the next patch version (TANDEM_VERSION_OVERRIDE), the package an
    upgrade test upgrades to: in a build folder of its own beside the one of the package under
    test (<build>-upgrade/), shared by the tests that upgrade and incremental after the first
    build; $TANDEM_JOBS compile jobs (2). With that build's TANDEM_CCACHE (tests/run sets it) the
    first build reuses its objects too: beside it, at the same depth, every command but those the
    version changes is the same. Returns (path, version, seconds the build took)."""
    repo_root = pathlib.Path(__file__).resolve().parents[2]
    base = package_path()
    major, minor, patch = expected_version().split(".")[:3]
    version = f"{major}.{minor}.{int(patch) + 1}"
    # Beside the build folder; for a package given by TANDEM_DEB outside one, next to the package.
    folder = base.resolve().parent
    cache = folder / "CMakeCache.txt"
    in_build_folder = cache.exists()
    build = (folder.parent / f"{folder.name}-upgrade" if in_build_folder
             else folder / "tandem-upgrade")
    settings = {"CMAKE_BUILD_TYPE": "RelWithDebInfo", "TANDEM_CCACHE": "OFF"}
    if in_build_folder:
        for line in cache.read_text().splitlines():
            entry, _, value = line.partition("=")  # NAME:TYPE=value
            name = entry.partition(":")[0]
            if name in settings and value:
                settings[name] = value
    started = time.monotonic()
    for argv in (["cmake", "-S", str(repo_root), "-B", str(build),
                  f"-DCMAKE_BUILD_TYPE={settings['CMAKE_BUILD_TYPE']}",
                  f"-DTANDEM_CCACHE={settings['TANDEM_CCACHE']}",
                  f"-DTANDEM_VERSION_OVERRIDE={version}", "-DTANDEM_BUILD_TESTS=OFF"],
                 ["cmake", "--build", str(build), "-j", os.environ.get("TANDEM_JOBS", "2"),
                  "--target", "deb"]):
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=900, check=False)
        assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stdout[-3000:]}"
    deb = build / f"tandem_{version}_amd64.deb"
    assert deb.is_file(), f"cpack wrote no {deb}"
    newer = subprocess.run(["dpkg", "--compare-versions", version, "gt", expected_version()],
                           check=False).returncode == 0
    assert newer, f"{version} is not newer than {expected_version()}"
    return deb, version, time.monotonic() - started


def require_free(port):
    """The guest's instances will listen on the host's port: nothing else may hold it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As tandem-server (libuv) binds: connections of an earlier run in TIME_WAIT on the port
        # do not count, a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
            probe.listen(1)
        except OSError as error:
            holders = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], text=True,
                                     stdout=subprocess.PIPE, check=False).stdout.strip()
            pytest.fail(f"{LOOPBACK}:{port} is taken ({error.strerror}); the package's "
                        f"instances need it. Held by: {holders or 'unknown'}")


class System:
    """A guest with tandem installed, and what the tests need to drive and observe it."""

    def __init__(self, guest, deb, lb_port, stats_port):
        self.guest = guest
        self.deb = deb
        self.lb_port = lb_port
        self.stats_port = stats_port
        self.variables = None
        self.api = RuntimeApi(guest.path(ADMIN_SOCKET))
        self.backend = None

    def url(self, path="/"):
        return f"http://{LOOPBACK}:{self.lb_port}{path}"

    def install(self):
        """dpkg -i the package; returns dpkg's output."""
        self.guest.write(GUEST_DEB, self.deb.read_bytes())
        result = self.guest.run(["dpkg", "-i", GUEST_DEB], timeout=300)
        return result.stdout + result.stderr

    def configure_haproxy(self, **changes):
        """Renders the errorfiles (HAProxy's own JSON answers) and the one template into the
        guest's /etc/haproxy, as the tandem_lb role does, checks the configuration with haproxy -c
        there, and unmasks haproxy.service (masked at boot). changes: template variables a test
        wants other than deployed (tandem_lb_log_requests="all")."""
        hard_limit = int(self.guest.run(["sh", "-c", "ulimit -Hn"]).stdout.strip())
        overrides = {
            "tandem_lb_bind_address": LOOPBACK,
            "tandem_lb_port": self.lb_port,
            "tandem_lb_stats_bind": f"{LOOPBACK}:{self.stats_port}",
            # HAProxy needs about two descriptors per connection; the guest inherits this host's
            # hard limit, which may be below what the default maxconn needs.
            "tandem_lb_maxconn": max(256, min(config.load_defaults()["tandem_lb_maxconn"],
                                              (hard_limit - 256) // 2)),
            # The drills' load stands for many clients but comes from one address: while an
            # instance hangs, the requests it holds take hundreds of connections at once, which
            # the per-address limits would refuse (the stack tests prove those limits).
            **ONE_ADDRESS_CROWD,
            # Plain HTTP only: this deployment renders the template itself, without the
            # tandem_lb role that writes the certificates; HTTPS as deployed is tested by
            # tests/ansible/test_tls.py.
            "tandem_lb_https_port": 0,
            **changes,
        }
        self.variables = config.variables(overrides)
        self.backend = self.variables["tandem_lb_backend_name"]
        servers = {s["id"]: s["port"] for s in self.variables["tandem_lb_backend_servers"]}
        assert servers == INSTANCES, f"the template's default servers changed: {servers}"
        errorfiles = self.variables["tandem_lb_errorfiles_dir"]
        for status in self.variables["tandem_lb_error_messages"]:
            self.guest.write(f"{errorfiles}/{status}.http",
                             config.render_errorfile(status, self.variables))
        self.guest.write("/etc/haproxy/haproxy.cfg", config.render(self.variables))
        self.guest.run(["haproxy", "-c", "-f", "/etc/haproxy/haproxy.cfg"])
        self.guest.unmask("haproxy.service")

    # --- observing -------------------------------------------------------------------------

    def wait_all_up(self, timeout=10.0):
        """Until HAProxy's checks have passed for every instance (UP and L7OK)."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            try:
                rows = {row["svname"]: row for row in self.api.show_stat()
                        if row["pxname"] == self.backend}
                last = {name: (rows[name]["status"], rows[name]["check_status"])
                        for name in INSTANCES if name in rows}
                if len(last) == len(INSTANCES) and all(
                        status == "UP" and check == "L7OK" for status, check in last.values()):
                    return
            except (OSError, RuntimeApiError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"HAProxy does not see every instance UP after "
                                     f"{timeout} s: {last}")
            time.sleep(0.05)

    def main_pid(self, unit):
        return int(self.guest.show(unit, "MainPID")["MainPID"])

    def wait_new_main_pid(self, unit, old_pid, timeout):
        """Polls until the unit runs with another main pid; returns (pid, monotonic time)."""
        deadline = time.monotonic() + timeout
        while True:
            pid = self.main_pid(unit)
            if pid not in (0, old_pid):
                return pid, time.monotonic()
            if time.monotonic() > deadline:
                raise AssertionError(f"{unit} was not restarted within {timeout} s "
                                     f"(MainPID {pid})")
            time.sleep(0.05)

    def cursor(self):
        """The journal's current end, to read only what comes after (entries())."""
        text = self.guest.journal("-n", "0", "--show-cursor")
        return text.strip().rsplit("cursor: ", 1)[1]

    def entries(self, after_cursor):
        """Every journal entry after the cursor, as dicts. Filtered here, not by journalctl:
        with a match, journalctl's --after-cursor was seen to skip entries."""
        text = self.guest.journal("-o", "json", f"--after-cursor={after_cursor}")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def events(self, unit, after_cursor):
        """The JSON log lines of a tandem unit since after_cursor, as dicts."""
        events = []
        for entry in self.entries(after_cursor):
            message = entry.get("MESSAGE")
            if entry.get("_SYSTEMD_UNIT") == unit and isinstance(message, str) and \
                    message.startswith("{"):
                try:
                    events.append(json.loads(message))
                except ValueError:
                    pass
        return events

    def systemd_messages(self, unit, after_cursor):
        """What systemd itself logged about unit since after_cursor, one message per line."""
        return "\n".join(entry.get("MESSAGE", "") for entry in self.entries(after_cursor)
                         if entry.get("_PID") == "1" and entry.get("UNIT") == unit
                         and isinstance(entry.get("MESSAGE"), str))

    def instance_metrics(self, port):
        """An instance's own /metrics (Prometheus text), straight from its port."""
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/metrics", timeout=2) as answer:
            return answer.read().decode()

    def instance_health(self, port):
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/health", timeout=2) as answer:
            return answer.status, json.loads(answer.read())


def fmt(seconds):
    return "n/a" if seconds is None else f"{seconds:.2f} s"


def status_lines(text):
    return re.findall(r"^\s*Status: (.*)$", text, flags=re.MULTILINE)
