"""tandemctl logs in a real systemd: tandem's .deb installed in a systemd-nspawn guest (the
`system` fixture), HAProxy as Debian's haproxy.service logging to journald, the instances with
their access log on, tandemctl reading the guest's own journal.

In file order: a request's id finds its HAProxy line and its instance's line and nothing else;
--instance keeps one unit's entries; -n bounds the count; --since takes a duration and refuses
nonsense with exit 2; piped, a line per entry as on a terminal (uncoloured), JSON with --json;
a crash's entry (COREDUMP_UNIT) counts as its instance's; a user who may not read the journal gets
exit 1 and what to do; -f prints what is logged after it started and
exits 0 on SIGTERM and on SIGINT, leaving nothing running.
"""

import datetime
import json
import queue
import re
import subprocess
import threading
import time

from tests.harness.load import Request, parallel
from tests.harness.systemd_container import GUEST_ENV
from tests.harness.waiting import wait_until
from tests.system.deployment import INSTANCES

UNITS = {instance_id: f"tandem@{port}.service" for instance_id, port in INSTANCES.items()}
HAPROXY_UNIT = "haproxy.service"
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
PRIORITIES = {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}


def ctl(system, *args, timeout=60):
    """tandemctl in the guest, stdout a pipe; returns the CompletedProcess."""
    return system.guest.run(["tandemctl", *map(str, args)], check=False, timeout=timeout)


def ctl_json(system, *args, timeout=60):
    """tandemctl logs ... --json in the guest, for entries() to parse."""
    return ctl(system, *args, "--json", timeout=timeout)


def entries(result):
    """The JSON objects of a run's stdout, one per line; fails on a line that is not one."""
    assert result.returncode == 0, result.stderr
    parsed = []
    for line in result.stdout.splitlines():
        entry = json.loads(line)
        assert TIME.match(entry["time"]), entry
        assert entry["priority"] in PRIORITIES, entry
        assert isinstance(entry["message"], str) and entry["unit"], entry
        assert entry["pid"] is None or isinstance(entry["pid"], int), entry
        parsed.append(entry)
    return parsed


def request_id(system):
    """One GET through HAProxy; (the X-Request-ID HAProxy answered with, the instance's id)."""
    answer = parallel([Request("GET", system.url("/api/whoami"))])[0]
    assert answer.ok, answer
    return answer.headers["x-request-id"], answer.instance


def test_started_with_access_log(system):
    guest = system.guest
    # Every request logged, by HAProxy and by the instances (by default only those that went
    # wrong are), each entry with the request's id.
    system.configure_haproxy(tandem_lb_log_requests="all")
    for port in INSTANCES.values():
        path = f"/etc/tandem/{port}.env"
        guest.write(path, guest.run(["cat", path]).stdout + "TANDEM_ACCESS_LOG=all\n")
    guest.systemctl("start", "tandem.target", "haproxy")
    system.wait_all_up(timeout=15)


def test_request_finds_haproxy_and_its_instance_only(system, report):
    wanted, instance = request_id(system)
    other, _ = request_id(system)

    def both():
        found = entries(ctl_json(system, "logs", "--request", wanted))
        units = {entry["unit"] for entry in found}
        return found if {HAPROXY_UNIT, UNITS[instance]} <= units else None

    started = time.monotonic()
    found = wait_until(both, timeout=10, interval=0.2, what=f"both entries of request {wanted}")
    report(f"logs --request {wanted}: {len(found)} entries after "
           f"{time.monotonic() - started:.2f} s:\n" + "\n".join(json.dumps(e) for e in found))
    assert len(found) == 2, found
    by_unit = {entry["unit"]: entry for entry in found}
    assert by_unit[UNITS[instance]]["instance"] == instance
    assert by_unit[HAPROXY_UNIT]["instance"] is None
    for entry in found:
        assert entry["request_id"] == wanted
        assert wanted in entry["message"] and other not in entry["message"]
    assert json.loads(by_unit[UNITS[instance]]["message"])["event"] == "request"
    # Bounded by --since, it is still found.
    assert entries(ctl_json(system, "logs", "--request", wanted, "--since", "10m")) == found
    # Neither a part of the id nor the id within a longer one finds it.
    assert entries(ctl_json(system, "logs", "--request", wanted[:-1])) == []
    assert entries(ctl_json(system, "logs", "--request", wanted[1:])) == []
    # An id never logged: nothing, exit 0.
    nothing = ctl(system, "logs", "--request", "no-such-request-id")
    assert (nothing.returncode, nothing.stdout) == (0, "")


def test_instance_keeps_one_unit(system, report):
    counts = {}
    for selector, unit in (("app-1", UNITS["app-1"]), (INSTANCES["app-2"], UNITS["app-2"]),
                           ("haproxy", HAPROXY_UNIT)):
        found = entries(ctl_json(system, "logs", "--instance", selector, "-n", "50"))
        counts[selector] = len(found)
        assert found, f"no entry of {selector}"
        assert {entry["unit"] for entry in found} == {unit}
    both = entries(ctl_json(system, "logs", "--instance", "app-1", "--instance", "app-2", "-n",
                            "50"))
    assert {entry["unit"] for entry in both} == {UNITS["app-1"], UNITS["app-2"]}
    everything = entries(ctl_json(system, "logs", "-n", "200"))
    assert {entry["unit"] for entry in everything} == {HAPROXY_UNIT, *UNITS.values()}

    unknown = ctl(system, "logs", "--instance", "app-9")
    report(f"entries per --instance (of the last 50): {counts}; --instance app-9: exit "
           f"{unknown.returncode}, {unknown.stderr.strip()!r}")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "app-9" in unknown.stderr and "app-1" in unknown.stderr and "haproxy" in \
        unknown.stderr


def test_lines_bound_the_count_newest_last(system):
    # Health checks and their access lines keep coming: there are more than 20.
    five = entries(ctl_json(system, "logs", "-n", "5"))
    assert len(five) == 5
    assert [e["time"] for e in five] == sorted(e["time"] for e in five)
    assert len(entries(ctl_json(system, "logs"))) == 20
    assert entries(ctl_json(system, "logs", "-n", "0")) == []
    # The five are the newest: a later run's twenty end with or after them.
    later = entries(ctl_json(system, "logs", "--lines", "20"))
    assert later[-1]["time"] >= five[-1]["time"]


def test_since(system, report):
    now = datetime.datetime.now(datetime.timezone.utc)
    hour = entries(ctl_json(system, "logs", "--since", "1h"))
    # Everything since then, not 20: the guest booted minutes ago and has logged more.
    assert len(hour) > 20
    first = datetime.datetime.strptime(hour[0]["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    assert first >= now - datetime.timedelta(hours=1, seconds=5)
    assert len(entries(ctl_json(system, "logs", "--since", "1h", "-n", "3"))) == 3
    assert entries(ctl_json(system, "logs", "--since", "today", "-n", "1"))
    # A date in the future: nothing yet.
    tomorrow = (datetime.date.today() + datetime.timedelta(days=2)).isoformat()
    assert entries(ctl_json(system, "logs", "--since", tomorrow)) == []

    bad = ctl(system, "logs", "--since", "nonsense")
    report(f"--since nonsense: exit {bad.returncode}, {bad.stderr.strip()!r}")
    assert bad.returncode == 2 and bad.stdout == ""
    assert "nonsense" in bad.stderr and "10m" in bad.stderr and "YYYY-MM-DD" in bad.stderr


def test_piped_lines_unless_json(system, report):
    wanted, instance = request_id(system)
    wait_until(lambda: len(entries(ctl_json(system, "logs", "--request", wanted))) == 2,
               timeout=10, interval=0.2, what=f"both entries of request {wanted}")
    piped = ctl(system, "logs", "--request", wanted)
    report("logs --request, piped:\n" + piped.stdout.rstrip())
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert len(lines) == 2, lines
    assert "\x1b" not in piped.stdout  # No colour into a pipe.
    local = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
    assert any(re.match(local + r"haproxy .* " + re.escape(wanted) + "$", line) for line in lines)
    assert any(re.match(local + re.escape(instance) + r" +\{", line) for line in lines)
    as_json = entries(ctl(system, "logs", "--request", wanted, "--json"))
    assert len(as_json) == 2 and all(entry["request_id"] == wanted for entry in as_json)


def test_a_crash_counts_as_its_instance(system, report):
    # What systemd-coredump logs of a crash, written by root as it is: its own unit logs it and
    # names the crashed one in COREDUMP_UNIT.
    marker = f"Process 4242 (tandem-server) of user 999 dumped core. {time.monotonic_ns()}"
    system.guest.run(["logger", "--journald"], input=(
        f"MESSAGE={marker}\nPRIORITY=2\nCOREDUMP_UNIT={UNITS['app-1']}\n"
        "MESSAGE_ID=fc2e22bc6ee647b6b90729ab34a250b1\n"))

    def crash():
        found = entries(ctl_json(system, "logs", "--instance", "app-1", "--since", "10m"))
        return [entry for entry in found if entry["message"] == marker]

    found = wait_until(crash, timeout=10, interval=0.2, what="the crash's entry")
    report(f"a crash of app-1 in logs --instance app-1: {found}")
    assert found[0]["unit"] == UNITS["app-1"] and found[0]["instance"] == "app-1"
    assert found[0]["priority"] == "crit"
    # Not another instance's.
    others = entries(ctl_json(system, "logs", "--instance", "app-2", "--since", "10m"))
    assert not [entry for entry in others if entry["message"] == marker]


def test_terminal_lines(system, report):
    wanted, instance = request_id(system)
    wait_until(lambda: len(entries(ctl_json(system, "logs", "--request", wanted))) == 2,
               timeout=10, interval=0.2, what=f"both entries of request {wanted}")
    # script(1) gives tandemctl a terminal; TERM=xterm lets it colour.
    shown = system.guest.run(["env", "TERM=xterm", "script", "-qec",
                              f"tandemctl logs --request {wanted}", "/dev/null"],
                             check=False, timeout=60)
    report("logs --request on a terminal:\n" + shown.stdout.rstrip())
    assert shown.returncode == 0, shown.stdout + shown.stderr
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in shown.stdout.splitlines()]
    assert len(lines) == 2, lines
    assert "\x1b[90m" in shown.stdout  # The time, grey.
    local = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} "
    assert re.match(local + r"haproxy ", lines[1]) or re.match(local + r"haproxy ", lines[0])
    assert any(re.match(local + re.escape(instance) + r" +\{", line) for line in lines)
    assert all(wanted in line for line in lines)
    # No entry on a terminal: a note on stderr (the same stream there), exit 0.
    none = system.guest.run(["script", "-qec", "tandemctl logs --request no-such-id",
                             "/dev/null"], check=False, timeout=60)
    assert none.returncode == 0 and "no entries" in none.stdout
    # With why a request may have left none, and how to log every one.
    assert "tandem_lb_log_requests=all" in none.stdout
    assert "tandem_app_access_log=all" in none.stdout


def test_a_user_without_the_journal_is_told_what_to_do(system, report):
    denied = system.guest.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                               "tandemctl", "logs"], check=False, timeout=60)
    report(f"logs as nobody: exit {denied.returncode}, {denied.stderr.strip()!r}")
    assert denied.returncode == 1 and denied.stdout == ""
    assert "permission denied" in denied.stderr and "systemd-journal" in denied.stderr


class Follower:
    """`tandemctl logs -f --json` running in the guest, its lines read as they come."""

    def __init__(self, system, *args):
        self.system = system
        self.process = subprocess.Popen(
            ["nsenter", "-t", str(system.guest.init_pid), "-a", "tandemctl", "logs", "-f",
             "--json", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=GUEST_ENV)
        self.lines = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.seen = []

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)

    def entries(self):
        """Every entry printed so far."""
        while True:
            try:
                self.seen.append(json.loads(self.lines.get_nowait()))
            except queue.Empty:
                return self.seen

    def guest_pid(self):
        """tandemctl's pid in the guest (nsenter forks it there)."""
        found = self.system.guest.run(["pgrep", "-x", "tandemctl"], check=False).stdout.split()
        assert len(found) == 1, f"tandemctl processes in the guest: {found}"
        return found[0]

    def stop(self, signal_name, timeout=10):
        """Sends the signal to tandemctl in the guest; returns its exit status and stderr."""
        try:
            self.system.guest.run(["kill", f"-{signal_name}", self.guest_pid()])
            self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.reader.join(timeout=5)
        return self.process.returncode, self.process.stderr.read()


def test_follow_prints_what_comes_and_stops_cleanly(system, report):
    said = {}
    for signal_name in ("TERM", "INT"):
        follower = Follower(system, "-n", "0")
        try:
            # It must be reading before a request counts: requests go until one is printed.
            sent = []

            def one_printed():
                assert follower.process.poll() is None, follower.process.stderr.read()
                sent.append(request_id(system)[0])
                messages = [e["message"] for e in follower.entries()]
                return [i for i in sent if any(i in message for message in messages)]

            printed = wait_until(one_printed, timeout=20, interval=0.3,
                                 what="a request sent after logs -f started to be printed")
            # Whatever comes after it is printed too, by both units (HAProxy's line names the
            # request in its text only).
            last, instance = request_id(system)
            wait_until(lambda: {e["unit"] for e in follower.entries()
                                if last in e["message"]} >= {HAPROXY_UNIT, UNITS[instance]},
                       timeout=10, interval=0.1, what=f"both entries of {last} followed")
        finally:
            code, stderr = follower.stop(signal_name)
        said[signal_name] = (code, len(follower.seen), len(sent), len(printed))
        assert code == 0, stderr
        assert stderr == ""
    left = system.guest.run(["pgrep", "-a", "tandemctl"], check=False).stdout.strip()
    report(f"logs -f: SIGTERM, SIGINT -> (exit, entries printed, requests sent until one was "
           f"printed, of them printed): {said}; tandemctl left: {left or 'none'}")
    assert not left
