"""Fixtures of the system tests: tandem's Debian package in a real systemd.

`system` (one per test module): a systemd-nspawn guest (tests/harness/systemd_container.py) with
the built .deb installed by dpkg and /etc/haproxy/haproxy.cfg rendered from haproxy/haproxy.cfg.j2
(tests/harness/config.py, the renderer the stack tests use) with the deployment defaults, changed
only where this host needs it (tests/system/deployment.py). Nothing is started: the tests start
tandem.target and haproxy the way an administrator does. Everything is powered off, unmounted and
removed at the end of the module, also when a test fails or the run is interrupted.

`report(line)`, sys.path and signal handling come from tests/conftest.py.
"""

import pathlib

import pytest

from tests.harness.stack import free_ports
from tests.harness.systemd_container import SystemdContainer
from tests.system.deployment import INSTANCES, System, package_path, require_free

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
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


@pytest.fixture(scope="module")
def system():
    deb = package_path()
    # Booting waits for any other guest on this machine to go (the guests' lock); only then are
    # the ports the package's instances will take checked, and HAProxy's chosen.
    # The repository is shown in the guest at its own path (the guest's /tmp is its own, and CI's
    # checkout may be there): test_example.py builds examples/notes from it.
    with SystemdContainer(bind_ro=(REPO_ROOT,)) as guest:
        if guest.swept:
            print(f"removed stale guests of earlier runs: {guest.swept}")
        for port in INSTANCES.values():
            require_free(port)
        lb_port, stats_port = free_ports(2)
        system = System(guest, deb, lb_port, stats_port)
        system.install_output = system.install()
        system.configure_haproxy()
        yield system
