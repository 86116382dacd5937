"""Fixtures of the system tests: tandem's Debian package in a real systemd.

`system` (one per test module): a systemd-nspawn guest (tests/harness/systemd_container.py) with
the built .deb installed by dpkg and /etc/haproxy/haproxy.cfg rendered from haproxy/haproxy.cfg.j2
(tests/harness/config.py, the renderer the stack tests use) with the deployment defaults, changed
only where this host needs it (tests/system/deployment.py). Nothing is started: the tests start
tandem.target and haproxy the way an administrator does. Everything is powered off, unmounted and
removed at the end of the module, also when a test fails or the run is interrupted.

`report(line)` records a measured number: printed at once and repeated in a "measured" section
at the end of the run.
"""

import pathlib
import sys

import pytest

sys.dont_write_bytecode = True
REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.harness.processes import raise_on_termination  # noqa: E402
from tests.harness.stack import free_ports  # noqa: E402
from tests.harness.systemd_container import SystemdContainer  # noqa: E402
from tests.system.deployment import INSTANCES, System, package_path, require_free  # noqa: E402

_measurements = []


def pytest_configure(config):
    raise_on_termination()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
    # A failed drill shows what the guest's units said.
    system = getattr(item, "funcargs", {}).get("system")
    if report.failed and system is not None and system.guest.init_pid is not None:
        try:
            journal = system.guest.journal("-u", "tandem@*", "-n", "50", "-o", "short-monotonic")
            # HAProxy's state changes and warnings, without its per-request lines.
            journal += system.guest.journal("-u", "haproxy", "-p", "notice", "-n", "20",
                                            "-o", "short-monotonic")
        except Exception as error:  # Reporting must not hide the failure itself.
            journal = f"(journal unavailable: {error})"
        report.sections.append(("guest journal (tandem@*, haproxy notices)", journal))


def pytest_terminal_summary(terminalreporter):
    if _measurements:
        terminalreporter.section("measured")
        for line in _measurements:
            terminalreporter.write_line(line)


@pytest.fixture
def report(request):
    def record(line):
        print(line, flush=True)
        _measurements.append(f"{request.node.name}: {line}")

    return record


@pytest.fixture(scope="module")
def system():
    deb = package_path()
    # Booting waits for any other guest on this machine to go (the guests' lock); only then are
    # the ports the package's instances will take checked, and HAProxy's chosen.
    with SystemdContainer() as guest:
        if guest.swept:
            print(f"removed stale guests of earlier runs: {guest.swept}")
        for port in INSTANCES.values():
            require_free(port)
        lb_port, stats_port = free_ports(2)
        system = System(guest, deb, lb_port, stats_port)
        system.install_output = system.install()
        system.configure_haproxy()
        yield system
