"""tandemctl against the local stack (real HAProxy, two real instances; no systemd here, so the
units' columns stay empty and `restart` says it needs systemd):

- `status --json` follows a drain, a maint, a killed instance and its return as they happen, and
  its exit status says whether every instance is UP;
- `drain --wait` returns as soon as HAProxy counts no connection on the instance, and within its
  bound (exit 5) while one is held;
- drain and maint refuse to take the last UP instance out (exit 4) unless --force;
- `ready --wait` returns once HAProxy's check passed and a request through the frontend reached it;
- every error path says what to do: no socket, a socket nobody listens on (HAProxy down),
  permission denied, an unknown instance, an unknown backend, a bad configuration line.
"""

import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request

from tests.harness.stack import ONE_ADDRESS_CROWD
from tests.harness.tandemctl import Tandemctl
from tests.harness.waiting import wait_until


def by_id(status):
    return {i["id"]: i for i in status["instances"]}


def haproxy_state(ctl, instance_id):
    return by_id(ctl.status()[0])[instance_id]["haproxy"]["state"]


def test_status_follows_the_instances(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)

    status, code = ctl.status(interval=0.5)
    instances = by_id(status)
    report(f"status of a healthy stack: exit {code}, "
           f"{ {i: (v['haproxy']['status'], v['pid'], v['version']) for i, v in instances.items()} }")
    assert code == 0 and status["all_up"]
    assert set(instances) == {"app-1", "app-2"}
    for instance_id, instance in instances.items():
        assert instance["haproxy"]["state"] == "UP"
        assert instance["haproxy"]["check_status"] == "L7OK"
        assert instance["pid"] == stack.instances[instance_id].process.pid
        assert instance["port"] == stack.instances[instance_id].port
        assert instance["reachable"] and instance["state"] == "healthy"
    assert status["haproxy"]["version"].startswith("2.")

    # The table a person reads: one line per instance, then HAProxy.
    table = ctl.run("status", "--interval", "0")
    lines = table.stdout.splitlines()
    assert table.returncode == 0, table.stderr
    assert lines[0].split()[:3] == ["ID", "PORT", "PID"]
    # This host's instances in the order of their ports, as /etc/tandem/<port>.env lists them;
    # the local stack's ports are picked free, in either order.
    by_port = sorted(("app-1", "app-2"), key=lambda i: stack.instances[i].port)
    assert [line.split()[0] for line in lines[1:3]] == by_port
    assert lines[3].startswith("haproxy ")

    # Rates come from two samples: load through the frontend shows on both instances.
    stop = threading.Event()

    def load():
        while not stop.is_set():
            urllib.request.urlopen(stack.url("/api/whoami"), timeout=5).read()

    worker = threading.Thread(target=load)
    worker.start()
    try:
        status, _ = ctl.status(interval=1)
    finally:
        stop.set()
        worker.join()
    rates = {i: v["requests_per_s"] for i, v in by_id(status).items()}
    report(f"under load: req/s {rates}, p99 ms { {i: v['p99_ms'] for i, v in by_id(status).items()} }")
    assert all(rate > 0 for rate in rates.values()), rates

    assert ctl.run("drain", "app-1").returncode == 0
    status, code = ctl.status()
    assert by_id(status)["app-1"]["haproxy"]["state"] == "DRAIN" and code == 3
    assert ctl.run("maint", "app-1").returncode == 0
    status, code = ctl.status()
    assert by_id(status)["app-1"]["haproxy"]["state"] == "MAINT" and code == 3
    assert ctl.run("ready", "app-1", "--wait", "10").returncode == 0
    assert ctl.status()[1] == 0

    # A killed instance: HAProxy's checks take it DOWN, and the instance is unreachable.
    stack.stop_instance("app-2", signal.SIGKILL)
    stack.wait_instance_exit("app-2", 5)
    down = wait_until(ctl.status, timeout=15, what="app-2 DOWN in status",
                      holds=lambda s: by_id(s[0])["app-2"]["haproxy"]["state"] == "DOWN")
    status, code = down
    app2 = by_id(status)["app-2"]
    report(f"app-2 killed: status exit {code}, HAProxy {app2['haproxy']['status']} "
           f"(last check {app2['haproxy']['check_status']}), reachable {app2['reachable']}")
    assert code == 3 and not app2["reachable"] and app2["pid"] is None
    stack.start_instance("app-2", wait=True)
    wait_until(lambda: ctl.status()[1] == 0, timeout=15, what="every instance UP again")


def test_drain_wait_follows_the_connections(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)
    app1 = stack.instances["app-1"].process

    def held_request():
        """A request to app-1 (by its cookie) that HAProxy holds open while app-1 is stopped."""
        request = urllib.request.Request(stack.url("/api/whoami"),
                                         headers={"Cookie": "tandem_instance=app-1"})
        thread = threading.Thread(target=lambda: urllib.request.urlopen(request, timeout=25).read())
        thread.start()
        wait_until(lambda: stack.api.server_stat(stack.backend, "app-1")["scur"] == "1",
                   timeout=5, what="HAProxy holding one connection on app-1")
        return thread

    app1.send(signal.SIGSTOP)
    try:
        thread = held_request()
        # The bound: the connection stays, so drain --wait gives up after 1 s with exit 5.
        started = time.monotonic()
        bounded = ctl.run("drain", "app-1", "--wait", "1")
        bounded_after = time.monotonic() - started
        assert bounded.returncode == 5, (bounded.returncode, bounded.stderr)
        assert "still 1 connection" in bounded.stderr
        assert 1.0 <= bounded_after < 3.0

        # The connection ends once app-1 answers: drain --wait returns then, not at its bound.
        waiting = subprocess.Popen(ctl.argv("drain", "app-1", "--wait", "20"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)  # drain --wait is polling while the connection is held.
        assert waiting.poll() is None, "drain --wait returned while a connection was held"
        resumed = time.monotonic()
        app1.send(signal.SIGCONT)
        _, stderr = waiting.communicate(timeout=25)
        returned_after = time.monotonic() - resumed
        thread.join(timeout=25)
    finally:
        app1.send(signal.SIGCONT)
    report(f"drain --wait 1 with a held connection: exit {bounded.returncode} after "
           f"{bounded_after:.2f} s; drain --wait 20: returned {returned_after:.2f} s after the "
           f"connection could end")
    assert waiting.returncode == 0, stderr
    assert "no connection left" in stderr
    assert returned_after < 5.0
    assert ctl.run("ready", "app-1", "--wait", "10").returncode == 0


def test_the_last_up_instance_stays_in(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)
    assert ctl.run("drain", "app-1").returncode == 0

    for command in ("drain", "maint"):
        refused = ctl.run(command, "app-2", "--peer-wait", "0")
        assert refused.returncode == 4, refused.stderr
        assert "refusing to take app-2 out of rotation" in refused.stderr
        assert "--force" in refused.stderr
        assert haproxy_state(ctl, "app-2") == "UP"
    check = ctl.run("drain", "app-2", "--check", "--peer-wait", "0")
    assert check.returncode == 4

    # A peer on its way back is waited for: app-1 ready again within --peer-wait.
    threading.Timer(1.0, lambda: ctl.run("ready", "app-1")).start()
    started = time.monotonic()
    waited = ctl.run("drain", "app-2", "--peer-wait", "10")
    waited_for = time.monotonic() - started
    report(f"drain app-2 while app-1 drained: refused (exit 4); with app-1 back after 1 s and "
           f"--peer-wait 10: exit {waited.returncode} after {waited_for:.2f} s")
    assert waited.returncode == 0, waited.stderr
    assert 1.0 <= waited_for < 10.0
    assert haproxy_state(ctl, "app-2") == "DRAIN"

    forced = ctl.run("drain", "app-1", "--force")
    assert forced.returncode == 0 and haproxy_state(ctl, "app-1") == "DRAIN"
    for instance_id in ("app-1", "app-2"):
        ready = ctl.run("ready", instance_id, "--wait", "10")
        assert ready.returncode == 0, ready.stderr
        assert f"{instance_id}: answers through" in ready.stderr


def test_errors_say_what_to_do(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)
    said = {}

    def expect(name, result, code, *words):
        said[name] = (result.returncode, result.stderr.strip().splitlines())
        assert result.returncode == code, (name, result.returncode, result.stderr)
        for word in words:
            assert word in result.stderr, (name, word, result.stderr)

    expect("no socket", ctl.run("--socket", "/nonexistent/admin.sock", "drain", "app-1"), 1,
           "no HAProxy runtime socket", "systemctl start haproxy")

    folder = pathlib.Path(tempfile.mkdtemp(prefix="tandemctl-"))
    try:
        stale = folder / "stale.sock"
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(stale))
        listener.close()  # The file stays, nobody listens: what a stopped HAProxy leaves.
        expect("HAProxy down", ctl.run("--socket", stale, "status"), 1, "HAProxy is down",
               "systemctl start haproxy")

        # Another user on root's socket (mode 660, no group): permission denied.
        os.chmod(folder, 0o755)
        shutil.copytree(ctl.config_dir, folder / "config")
        nobody = pwd.getpwnam("nobody")
        denied = subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
             ctl.binary, "--config-dir", str(folder / "config"), "--socket",
             str(stack.admin_socket), "drain", "app-1"],
            capture_output=True, text=True, timeout=30, check=False)
        expect("permission denied", denied, 1, "permission denied", "run as root",
               "haproxy group")

        bad = folder / "bad"
        bad.mkdir()
        (bad / "3001.env").write_text("TANDEM_ID=app-1\nthis is not a variable\n")
        expect("bad configuration", ctl.run("--config-dir", bad, "status", config_dir=False), 2, "3001.env:2",
               "KEY=VALUE")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    expect("unknown instance", ctl.run("drain", "app-9"), 2, 'no instance "app-9"',
           "app-1, app-2")
    expect("unknown backend", ctl.run("--backend", "nope", "status"), 2,
           'no backend "nope"', "--backend")
    expect("unknown server in status", ctl.run("status", "--server", "app-9"), 2, "app-9")
    expect("restart without systemd", ctl.run("restart", "all"), 2, "needs systemd")
    expect("bad --wait", ctl.run("drain", "app-1", "--wait", "soon"), 2, "--wait")
    expect("no command", ctl.run(), 2, "subcommand")
    report("errors: " + "; ".join(f"{name}: exit {code}, {lines[:2]}"
                                  for name, (code, lines) in said.items()))
    # Nothing was changed by any of them.
    assert ctl.status()[1] == 0
