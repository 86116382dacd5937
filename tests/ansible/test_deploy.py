"""ansible/'s playbooks against a real systemd, reached over SSH: deploy from scratch, deploy again
(changed=0, and --check --diff clean), a roll that stops at an instance that does not come back,
leaving the other one serving under 100 GET/s from the host with zero failed requests, then the
next release deployed over it, and the same deployment run inside the guest over the local
connection.

Rolling restarts and upgrades under load are drilled where they matter most: across two
application hosts in tests/multihost/ (never fewer than three of four instances in rotation), and
on this one-host layout over HTTPS with Redis sessions in tests/ansible/test_tls.py.

One guest for the whole module (the `target` fixture); the tests are one story and run in file
order, each leaving both instances UP for the next.
"""

import json
import pathlib
import re
import shlex
import time
import urllib.request

import pytest

from tests.harness.load import ContinuousLoad, Request, parallel
from tests.harness.runtime_api import RotationMonitor, RuntimeApi
from tests.system.deployment import build_next_package, expected_version

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
LB_URL = "http://127.0.0.1:80"  # the local inventory's HAProxy (tandem_lb_port)
INSTANCES = {"app-1": 3001, "app-2": 3002}  # ansible/inventories/local/group_vars/all.yml
BACKEND = "tandem"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
RATE = 100  # GET /api/whoami per second through HAProxy, for every roll
BREAK_DROPIN = "/etc/systemd/system/tandem@3001.service.d/test-does-not-start.conf"


# --- load and observation ---------------------------------------------------------------------

def under_load(target, playbook, *args, extra_vars=None):
    """Runs a playbook while RATE requests per second go through HAProxy and its servers' states
    are read every 100 ms; returns (run, outcomes, monitor, load)."""
    with RotationMonitor(target.guest.path(ADMIN_SOCKET), BACKEND) as monitor:
        with ContinuousLoad(f"{LB_URL}/api/whoami", RATE) as load:
            time.sleep(1.0)
            load.run_started = time.monotonic()
            run = target.playbook(playbook, *args, extra_vars=extra_vars)
            load.run_ended = time.monotonic()
            time.sleep(1.0)
            outcomes = load.stop()
    return run, outcomes, monitor, load


def summarize(report, name, run, outcomes, monitor, load):
    failures = [o for o in outcomes if not o.ok]
    first, last = outcomes[0].scheduled, outcomes[-1].scheduled
    seconds = last - first + 1 / RATE
    answered = {i: sum(1 for o in outcomes if o.ok and o.instance == i) for i in INSTANCES}
    report(f"{name}: ansible-playbook took {run.seconds:.1f} s, exit {run.returncode}, "
           f"recap {run.recap}")
    report(f"{name}: {len(outcomes)} requests in {seconds:.1f} s "
           f"({len(outcomes) / seconds:.1f}/s), from {load.run_started - first:.1f} s before the "
           f"playbook to {last - load.run_ended:.1f} s after it; {len(failures)} failed; "
           f"answered by {answered}")
    # The load covers the whole playbook run, at the rate asked for.
    assert first < load.run_started and last > load.run_ended
    assert abs(len(outcomes) / seconds - RATE) < 0.02 * RATE
    in_rotation = monitor.in_rotation()
    report(f"{name}: runtime API read {len(monitor.samples)} times (longest gap "
           f"{monitor.longest_gap() * 1000:.0f} ms, {monitor.errors} errors); servers in rotation: "
           f"min {min(in_rotation, default=0)}, max {max(in_rotation, default=0)}")
    for server in INSTANCES:
        report(f"{name}: {server} went {' -> '.join(monitor.states_seen(server))}")
    for failure in failures[:5]:
        report(f"  failed at {failure.started - load.started:.3f} s: status {failure.status} "
               f"{failure.error or failure.body[:100]!r}")
    return failures, in_rotation


def require_ok(run):
    assert run.ok, f"{' '.join(run.argv)} exited {run.returncode}:\n{run.tail(80)}"


def health(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
        return answer.status, json.loads(answer.read())


def unit(target, port):
    return target.guest.show(f"tandem@{port}.service", "ActiveState", "MainPID",
                             "ExecMainStartTimestampMonotonic")


def lb_answers(count):
    """Which instance answered each of count requests, one after the other, each on a fresh
    connection without cookie (round robin alternates)."""
    return [parallel([Request("GET", f"{LB_URL}/api/whoami")])[0].instance for _ in range(count)]


def haproxy_statuses(target):
    return RuntimeApi(target.guest.path(ADMIN_SOCKET)).statuses(BACKEND)


def require_both_up(target):
    deadline = time.monotonic() + 10
    while True:
        statuses = haproxy_statuses(target)
        if all(statuses.get(server) == "UP" for server in INSTANCES):
            return
        assert time.monotonic() < deadline, f"not every instance UP in HAProxy: {statuses}"
        time.sleep(0.1)


# --- the newer package ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def next_package():
    """The same tree built as the next patch version (tests/system/deployment.py)."""
    deb, version, seconds = build_next_package()
    print(f"built {deb} in {seconds:.1f} s")
    return deb, version


# --- 1. from scratch --------------------------------------------------------------------------

def test_deploy_from_scratch(target, report):
    """ansible-playbook deploy.yml on a fresh server: both instances and HAProxy up, the LB
    answers from both."""
    version = expected_version()
    run = target.playbook("deploy.yml")
    require_ok(run)
    units = {port: unit(target, port) for port in INSTANCES.values()}
    haproxy = target.guest.show("haproxy.service", "ActiveState", "UnitFileState")
    sequence = lb_answers(10)
    versions = {port: health(port)[1]["version"] for port in INSTANCES.values()}
    report(f"first deploy: {run.seconds:.1f} s, recap {run.recap}")
    report(f"units: {units}; haproxy.service {haproxy}")
    report(f"LB answers, one request at a time: {' '.join(sequence)}; /health versions {versions}")

    assert run.recap["failed"] == 0 and run.recap["changed"] > 0
    for state in units.values():
        assert state["ActiveState"] == "active"
    assert haproxy == {"ActiveState": "active", "UnitFileState": "enabled"}
    assert set(sequence) == set(INSTANCES), sequence
    assert all(a != b for a, b in zip(sequence, sequence[1:])), sequence
    assert set(versions.values()) == {version}
    require_both_up(target)


# --- 2. idempotence ---------------------------------------------------------------------------

def test_deploy_again_changes_nothing(target, report):
    """The same deploy again reports changed=0, and --check --diff runs clean."""
    pids = {port: unit(target, port)["MainPID"] for port in INSTANCES.values()}
    again = target.playbook("deploy.yml")
    check = target.playbook("deploy.yml", "--check", "--diff")
    report(f"deploy again: {again.seconds:.1f} s, recap {again.recap}")
    report(f"deploy --check --diff: {check.seconds:.1f} s, recap {check.recap}")
    require_ok(again)
    require_ok(check)
    assert again.recap["changed"] == 0, again.tail(80)
    assert check.recap["changed"] == 0 and check.recap["failed"] == 0, check.tail(80)
    # --diff prints what would change; nothing does.
    assert "--- before" not in check.output, check.tail(80)
    assert {port: unit(target, port)["MainPID"] for port in INSTANCES.values()} == pids


# --- 3. an instance that does not come back ---------------------------------------------------

def test_roll_stops_at_an_instance_that_does_not_come_back(target, report, next_package):
    """With app-1 unable to start, rolling-restart.yml takes it out, fails, and stops: app-2 is
    never touched and serves every request. Fixed, a deploy of the next release starts app-1 and
    puts it back, both instances on that release."""
    deb, version = next_package
    require_both_up(target)
    guest = target.guest
    guest.write(BREAK_DROPIN, "[Service]\nExecStartPre=/bin/false\n")
    guest.systemctl("daemon-reload")
    app2_pid = unit(target, 3002)["MainPID"]
    try:
        run, outcomes, monitor, load = under_load(target, "rolling-restart.yml")
        failures, in_rotation = summarize(report, "aborted roll", run, outcomes, monitor, load)
        statuses = haproxy_statuses(target)
        report(f"aborted roll: HAProxy after it: {statuses}; app-2 MainPID {app2_pid} -> "
               f"{unit(target, 3002)['MainPID']}")
        message = [line for line in run.output.splitlines()
                   if "FAILED!" in line and "did not come back" in line]
        report(f"aborted roll: {message[0].strip()[:300] if message else 'no message'}")

        assert run.returncode != 0 and run.recap["failed"] == 1
        assert message
        assert not failures
        assert min(in_rotation) >= 1
        assert statuses["app-1"].startswith("MAINT") and statuses["app-2"] == "UP"
        assert unit(target, 3002)["MainPID"] == app2_pid
        out_at = next(when for when, states in monitor.samples
                      if states.get("app-1", "").startswith("MAINT"))
        assert all(o.instance == "app-2" for o in outcomes if o.started > out_at + 0.2)
    finally:
        guest.run(["rm", "-f", BREAK_DROPIN])
        guest.systemctl("daemon-reload")

    fixed = target.playbook("deploy.yml", extra_vars={"tandem_app_package": str(deb)})
    versions = {port: health(port)[1]["version"] for port in INSTANCES.values()}
    report(f"after the fix, deploy {version}: {fixed.seconds:.1f} s, recap {fixed.recap}; HAProxy "
           f"{haproxy_statuses(target)}; /health versions {versions}")
    require_ok(fixed)
    assert unit(target, 3001)["ActiveState"] == "active"
    assert set(versions.values()) == {version}
    require_both_up(target)
    assert set(lb_answers(4)) == set(INSTANCES)


# --- 4. the local connection ------------------------------------------------------------------

def test_local_connection_on_a_systemd_machine(target, report, next_package):
    """On a machine whose PID 1 is systemd (the guest itself), the local inventory uses the
    local connection: the same deployment, run there, finds nothing to change."""
    deb, _ = next_package
    guest = target.guest
    guest.write(f"/var/tmp/{deb.name}", deb.read_bytes())
    started = time.monotonic()
    result = guest.run(["sh", "-c", f"cd {REPO_ROOT / 'ansible'} && ansible-playbook deploy.yml "
                                    f"-e tandem_app_package=/var/tmp/{deb.name} "
                                    f"-e {shlex.quote(json.dumps(target.base_vars))}"],
                       check=False, timeout=600)
    took = time.monotonic() - started
    recap = re.findall(r"^tandem-local\s*:\s*(.*)$", result.stdout, flags=re.MULTILINE)
    connection = guest.run(["sh", "-c", f"cd {REPO_ROOT / 'ansible'} && ansible tandem-local -m "
                                        "ansible.builtin.debug -a var=ansible_connection"]).stdout
    report(f"inside the guest (PID 1 systemd), deploy.yml over the local connection: {took:.1f} s, "
           f"exit {result.returncode}, recap {recap}; ansible_connection there: "
           f"{connection.split('=>', 1)[-1].split()}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert recap and "changed=0" in recap[-1] and "failed=0" in recap[-1]
    assert '"ansible_connection": "local"' in connection, connection
    require_both_up(target)
