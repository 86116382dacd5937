"""tandemctl in a real systemd: tandem's .deb installed in a systemd-nspawn guest (the `system`
fixture), HAProxy as Debian's haproxy.service, tandemctl as the package installs it reading the
package's /etc/tandem.

One story on one guest, in file order: started; `status --json` follows a stop, a disabled
instance, a drain, a maint and a watchdog restart as they happen; `restart all` under 100 GET/s
loses no request and gives every instance a new process; its error paths leave nothing running.
"""

import json
import time

from tests.harness.load import PacedLoad
from tests.harness.waiting import wait_until
from tests.system.deployment import INSTANCES, expected_version, fmt

RATE = 100  # GET /api/whoami per second through HAProxy during the roll.
UNITS = {instance_id: f"tandem@{port}.service" for instance_id, port in INSTANCES.items()}


def ctl(system, *args, check=None):
    """tandemctl in the guest; returns the CompletedProcess (exit status not checked)."""
    return system.guest.run(["tandemctl", *map(str, args)], check=False, timeout=180)


def status(system):
    result = ctl(system, "status", "--json", "--interval", "0")
    assert result.returncode in (0, 3), result.stderr
    body = json.loads(result.stdout)
    return {i["id"]: i for i in body["instances"]}, result.returncode


def wait_status(system, predicate, timeout, what):
    """Polls `status --json` until predicate(instances, exit status) holds; returns both."""
    return wait_until(lambda: status(system), timeout=timeout, what=what,
                      holds=lambda s: predicate(*s))


def test_started_and_seen(system, report):
    guest = system.guest
    # The package's tandemctl.conf names port 80; this guest's HAProxy listens on another.
    conf = guest.run(["cat", "/etc/tandem/tandemctl.conf"]).stdout
    guest.write("/etc/tandem/tandemctl.conf",
                conf.replace("TANDEM_LB_URL=http://127.0.0.1:80",
                             f"TANDEM_LB_URL=http://127.0.0.1:{system.lb_port}"))
    guest.systemctl("start", "tandem.target", "haproxy")
    system.wait_all_up(timeout=15)

    table = ctl(system, "status")
    report("tandemctl status:\n" + table.stdout.rstrip())
    assert table.returncode == 0, table.stderr
    instances, code = status(system)
    assert code == 0 and set(instances) == set(INSTANCES)
    for instance_id, instance in instances.items():
        unit = guest.show(UNITS[instance_id], "MainPID", "NRestarts")
        assert instance["pid"] == int(unit["MainPID"])
        assert instance["unit"]["restarts"] == int(unit["NRestarts"])
        assert instance["unit"]["active_state"] == "active"
        assert instance["unit"]["unit_file_state"] == "enabled"
        assert instance["version"] == expected_version()
        assert instance["haproxy"]["state"] == "UP"


def test_status_follows_stop_disable_drain_and_maint(system, report):
    guest = system.guest
    seen = []
    guest.systemctl("stop", "tandem@3002")
    instances, code = wait_status(system, lambda i, c: i["app-2"]["haproxy"]["state"] == "DOWN",
                                  15, "app-2 DOWN after systemctl stop")
    seen.append(("stop", code, instances["app-2"]["haproxy"]["status"],
                 instances["app-2"]["unit"]["active_state"]))
    assert code == 3 and instances["app-2"]["unit"]["active_state"] == "inactive"
    assert not instances["app-2"]["reachable"] and instances["app-2"]["pid"] is None

    # Disabled on purpose, it no longer counts against the exit status.
    guest.systemctl("disable", "tandem@3002")
    instances, code = status(system)
    seen.append(("disabled", code, instances["app-2"]["unit"]["unit_file_state"]))
    assert code == 0 and not instances["app-2"]["expected"]
    guest.systemctl("enable", "--now", "tandem@3002")
    wait_status(system, lambda i, c: c == 0 and i["app-2"]["haproxy"]["state"] == "UP", 15,
                "app-2 UP again")

    for command, state in (("drain", "DRAIN"), ("maint", "MAINT")):
        assert ctl(system, command, "app-1").returncode == 0
        instances, code = status(system)
        seen.append((command, code, instances["app-1"]["haproxy"]["state"]))
        assert code == 3 and instances["app-1"]["haproxy"]["state"] == state
    ready = ctl(system, "ready", "app-1", "--wait", "15")
    assert ready.returncode == 0, ready.stderr
    assert status(system)[1] == 0
    report(f"status (exit, state) as it happened: {seen}")


def test_status_follows_a_watchdog_restart(system, report):
    guest = system.guest
    before, _ = status(system)
    stopped = time.monotonic()
    guest.systemctl("kill", "-s", "STOP", "tandem@3002")
    instances, code = wait_status(
        system, lambda i, c: i["app-2"]["pid"] not in (None, before["app-2"]["pid"])
        and i["app-2"]["unit"]["restarts"] == before["app-2"]["unit"]["restarts"] + 1,
        30, "app-2 restarted by the watchdog in status")
    restarted = time.monotonic() - stopped
    instances, code = wait_status(system, lambda i, c: c == 0, 15, "app-2 UP after its restart")
    app2 = instances["app-2"]
    report(f"SIGSTOP on app-2: status showed restarts {before['app-2']['unit']['restarts']} -> "
           f"{app2['unit']['restarts']}, pid {before['app-2']['pid']} -> {app2['pid']} after "
           f"{fmt(restarted)}, uptime now {app2['uptime_s']:.1f} s")
    assert app2["uptime_s"] < before["app-2"]["uptime_s"] + restarted
    table = ctl(system, "status", "--interval", "0").stdout
    assert f"{app2['unit']['restarts']}" in table.splitlines()[2].split()[-1]


def test_restart_all_under_load(system, report):
    before, code = status(system)
    assert code == 0
    load = PacedLoad(system.url("/api/whoami"), rate=RATE, duration=40)
    started = time.monotonic()
    load.start()
    time.sleep(2)
    rolled_at = time.monotonic()
    rolled = ctl(system, "restart", "all")
    roll_took = time.monotonic() - rolled_at
    outcomes = load.join()
    after, code = status(system)
    failed = [o for o in outcomes if not o.ok]
    report(f"tandemctl restart all: exit {rolled.returncode} in {fmt(roll_took)} under {RATE} "
           f"GET/s: {len(outcomes)} requests, {len(failed)} failed; pids "
           f"{ {i: (before[i]['pid'], after[i]['pid']) for i in INSTANCES} }")
    report("its progress:\n" + rolled.stderr.rstrip())
    assert rolled.returncode == 0, rolled.stderr
    assert not failed, failed[:3]
    assert len(outcomes) == RATE * 40
    assert code == 0
    for instance_id in INSTANCES:
        assert after[instance_id]["pid"] != before[instance_id]["pid"]
        assert after[instance_id]["unit"]["active_since_us"] > \
            before[instance_id]["unit"]["active_since_us"]
    assert time.monotonic() - started < 60


def test_errors_in_the_guest(system, report):
    said = {}
    unknown = ctl(system, "restart", "app-9")
    said["unknown instance"] = (unknown.returncode, unknown.stderr.strip())
    assert unknown.returncode == 2 and "app-1, app-2" in unknown.stderr

    # Only app-1 left UP: restarting it is refused, and nothing is changed.
    assert ctl(system, "maint", "app-2").returncode == 0
    refused = ctl(system, "restart", "app-1", "--peer-wait", "0")
    said["last UP"] = (refused.returncode, refused.stderr.strip())
    assert refused.returncode == 4 and "refusing" in refused.stderr
    instances, _ = status(system)
    assert instances["app-1"]["haproxy"]["state"] == "UP"
    assert ctl(system, "ready", "app-2", "--wait", "15").returncode == 0

    # HAProxy down: status says so and what to do.
    system.guest.systemctl("stop", "haproxy")
    try:
        down = ctl(system, "status")
        said["HAProxy down"] = (down.returncode, down.stderr.strip())
        assert down.returncode == 1
        assert "HAProxy" in down.stderr and "systemctl start haproxy" in down.stderr
    finally:
        system.guest.systemctl("start", "haproxy")
    system.wait_all_up(timeout=15)
    left = system.guest.run(["pgrep", "-a", "tandemctl"], check=False).stdout.strip()
    report(f"errors: {said}; tandemctl processes left: {left or 'none'}")
    assert not left
