"""Fixtures of the Ansible tests (tests/ansible/).

`target` (one per test module): a systemd guest reached over SSH (tests/harness/ansible_guest.py)
into which the tests run ansible/'s playbooks with the local inventory, exactly as an operator
would; the package under test is the one CTest's system.deb fixture built (TANDEM_BUILD_DIR and
TANDEM_VERSION, or TANDEM_DEB). Powered off and removed at the end of the module, also on a failure
or an interrupted run. Its playbooks serve plain HTTP on :80 (PLAIN_HTTP), where the tests send
their load; test_tls.py deploys the default redirect itself.

`report(line)`, sys.path and signal handling come from tests/conftest.py.
"""

import pytest

from tests.harness.ansible_guest import PLAIN_HTTP, AnsibleGuest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # A failed test shows what the guest's units said.
    target = getattr(item, "funcargs", {}).get("target")
    if report.failed and target is not None and target.guest is not None \
            and target.guest.init_pid is not None:
        try:
            journal = target.guest.journal("-u", "tandem@*", "-u", "haproxy", "-n", "60",
                                           "-o", "short-monotonic")
        except Exception as error:  # Reporting must not hide the failure itself.
            journal = f"(journal unavailable: {error})"
        report.sections.append(("guest journal (tandem@*, haproxy)", journal))


@pytest.fixture(scope="module")
def target():
    from tests.system.deployment import package_path

    with AnsibleGuest(deb=package_path(), base_vars=PLAIN_HTTP) as guest:
        if guest.guest.swept:
            print(f"removed stale guests of earlier runs: {guest.guest.swept}")
        yield guest
