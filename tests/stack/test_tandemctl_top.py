"""tandemctl top as an operator uses it: in a real terminal (a tmux pane of fixed size, read with
capture-pane), on a real stack (HAProxy and two tandem-server instances), under real load.

- Its rates follow the load: both instances' REQ/S are non-zero under load, rise when the load
  rises, their SHARE adds up to 100 %, and they fall to 0 when the load stops. q then quits at
  once with status 0 and gives the terminal back as it was (termios, normal screen, cursor).
- SIGTERM, SIGINT, SIGHUP and Ctrl-C quit the same way.
- A resize redraws at once (SIGWINCH), never wider than the terminal nor taller.
- The error paths: HAProxy unreachable (the header says so, the view keeps refreshing, q quits
  0); an instance stopped (its row says so); not a terminal (exit 2, pointing at status); an
  error raised while the screen is taken (terminal restored, the error shown, exit 2); bad
  options (exit 2).

No test leaves anything running: every tmux server is killed on the way out, and with it the
command if it still ran.
"""

import os
import re
import signal
import statistics
import subprocess
import time

from tests.harness.load import PacedLoad
from tests.harness.stack import ONE_ADDRESS_CROWD, free_ports
from tests.harness.tandemctl import Tandemctl, find_ctl_bin
from tests.harness.tmux import TmuxPane
from tests.harness.waiting import wait_until

COLUMNS, ROWS = 100, 20
# Two phases of paced load through HAProxy, in requests per second, each PHASE_S long: the rates
# shown must follow the step. Light enough for a shared 2-core machine.
RATES = (40, 120)
PHASE_S = 6
# Frames whose second began after the phase's first one are wholly under its load.
SETTLE_S = 1.5
# q, Ctrl-C and the signals are answered at once (poll on stdin and a self-pipe), not at the next
# tick; the bound leaves room for a busy machine.
QUIT_BOUND_S = 1.0


def parse_frame(text):
    """One screen of top as {"clock", "header", "rows": {id: {title: cell}}}, None when the
    screen shows no frame (yet)."""
    lines = text.splitlines()
    header = next((line for line in lines if line.startswith("tandemctl top")), None)
    titles = next((i for i, line in enumerate(lines) if line.startswith("ID ")), None)
    if header is None or titles is None:
        return None
    columns = [(m.group(), m.start()) for m in re.finditer(r"\S+", lines[titles])]
    rows = {}
    for line in lines[titles + 1:]:
        if not line.startswith("app-"):
            continue
        cells = {}
        for k, (title, start) in enumerate(columns):
            end = columns[k + 1][1] if k + 1 < len(columns) else None
            cells[title] = line[start:end].strip()
        cells["line"] = line
        rows[cells["ID"]] = cells
    return {"clock": header.split()[2], "header": header, "rows": rows, "text": text}


def number(cell):
    """A REQ/S or SHARE cell as a float; None for "-" or anything else."""
    try:
        return float(cell.rstrip("%"))
    except ValueError:
        return None


class Frames:
    """The frames seen on a pane, each once (by its clock), with when it was first seen."""

    def __init__(self, pane):
        self.pane = pane
        self.seen = []  # (monotonic time first seen, frame)

    def poll(self):
        frame = parse_frame(self.pane.screen())
        if frame and (not self.seen or self.seen[-1][1]["clock"] != frame["clock"]
                      or self.seen[-1][1]["rows"] != frame["rows"]):
            self.seen.append((time.monotonic(), frame))
        return frame

    def wait(self, holds, timeout, what):
        """The first frame for which holds(frame) is true, polling the pane."""
        return wait_until(self.poll, timeout, 0.1, what, holds=lambda f: f is not None
                          and holds(f))

    def between(self, start, end):
        return [frame for at, frame in self.seen if start <= at <= end]


def rates_of(frame, ids):
    return [number(frame["rows"][i]["REQ/S"]) if i in frame["rows"] else None for i in ids]


def quit_and_check(pane, how, report=None):
    """Quits top by `how` (a key for send-keys, or a signal), then asserts it exited promptly
    with status 0, left the terminal as it was, and is gone. Returns the seconds it took."""
    started = time.monotonic()
    if isinstance(how, signal.Signals):
        assert pane.command_alive(), "tandemctl is not running before it is told to quit"
        os.kill(pane.command_pid, how)
    else:
        pane.send_keys(how)
    status = pane.wait_exit(timeout=5)
    took = time.monotonic() - started
    name = how.name if isinstance(how, signal.Signals) else f"key {how}"
    assert status == 0, f"{name}: exit status {status}; the pane shows:\n{pane.screen()}"
    assert took < QUIT_BOUND_S, f"{name}: took {took:.2f} s to quit"
    assert pane.terminal_restored() == [], f"{name}: terminal not restored"
    assert "tandemctl top" not in pane.screen(history=True), f"{name}: the view is still shown"
    assert not pane.command_alive()
    if report:
        report(f"{name}: exit 0 in {took * 1000:.0f} ms, terminal restored")
    return took


def test_top_follows_the_load_and_q_quits(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)
    ids = sorted(stack.instances)
    with TmuxPane(ctl.argv("top"), COLUMNS, ROWS) as pane:
        frames = Frames(pane)
        first = frames.wait(lambda f: all(i in f["rows"] for i in ids), 10,
                            "top to show both instances")
        assert re.search(r"haproxy \d.* conns \d+/\d+ +tandem queue 0", first["header"]), \
            first["text"]
        medians = {}
        for rate in RATES:
            load = PacedLoad(stack.url("/api/whoami"), rate, PHASE_S)
            start = load.start()
            frames.wait(lambda f: time.monotonic() >= start + PHASE_S, PHASE_S + 5,
                        f"the {rate} req/s phase to end")
            outcomes = load.join()
            failed = [o for o in outcomes if not o.ok]
            assert not failed, f"{len(failed)} requests failed under {rate} req/s: {failed[:3]}"
            steady = frames.between(start + SETTLE_S, start + PHASE_S)
            assert len(steady) >= 3, f"only {len(steady)} frames under {rate} req/s"
            share_sums = []
            for frame in steady:
                rates = rates_of(frame, ids)
                assert all(r is not None and r > 0 for r in rates), \
                    f"an instance shows no rate under {rate} req/s:\n{frame['text']}"
                shares = [number(frame["rows"][i]["SHARE"]) for i in ids]
                assert None not in shares, frame["text"]
                share_sums.append(sum(shares))
                assert abs(share_sums[-1] - 100) <= 0.5, frame["text"]
                assert all(frame["rows"][i]["P99"] != "-" for i in ids), frame["text"]
            medians[rate] = [statistics.median(rates_of(f, ids)[k] for f in steady)
                             for k in range(len(ids))]
            total = sum(medians[rate])
            assert 0.7 * rate <= total <= 1.3 * rate, \
                f"top shows {total:.1f} req/s in all for {rate} req/s sent"
            for k, instance in enumerate(ids):
                assert medians[rate][k] >= 0.25 * rate, \
                    f"{instance} shows {medians[rate][k]} req/s of {rate} (round robin)"
            shown = ", ".join(f"{i} {m:.1f}" for i, m in zip(ids, medians[rate]))
            report(f"{rate} req/s sent: top shows {shown} req/s (medians of {len(steady)} "
                   f"frames), shares summing to {min(share_sums):.1f}-{max(share_sums):.1f} %")
        low, high = RATES
        for k, instance in enumerate(ids):
            assert medians[high][k] > 2 * medians[low][k], \
                f"{instance}'s rate did not follow the load: {medians[low][k]} -> " \
                f"{medians[high][k]}"
        stopped = time.monotonic()
        idle = frames.wait(lambda f: rates_of(f, ids) == [0.0] * len(ids), 5,
                           "both rates to fall to 0 once the load stopped")
        report(f"after the load: both rates 0.0 within {time.monotonic() - stopped:.1f} s; "
               f"{len(frames.seen)} frames seen in all")
        assert all(idle["rows"][i]["SHARE"] == "-" for i in ids), idle["text"]
        quit_and_check(pane, "q", report)


def test_signals_and_ctrl_c_quit_and_restore_the_terminal(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)
    for how in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, "C-c", "Q"):
        with TmuxPane(ctl.argv("top"), COLUMNS, ROWS) as pane:
            Frames(pane).wait(lambda f: "app-1" in f["rows"] and "app-2" in f["rows"], 10,
                              "top to show both instances")
            quit_and_check(pane, how, report)


def test_resize_redraws_at_once_within_the_terminal(tmp_path, report):
    # No stack: two instances that do not answer (their rows carry long errors) and no HAProxy
    # (a long header and hint) make lines wider than the narrowed terminal.
    for port in free_ports(2):
        (tmp_path / f"{port}.env").write_text(f"TANDEM_ID=app-{port}\n")
    # A long interval: a redraw seen before the next tick can only be SIGWINCH's.
    argv = [find_ctl_bin(), "--config-dir", tmp_path, "--socket", tmp_path / "none.sock", "top",
            "--interval", "30"]
    with TmuxPane(argv, COLUMNS, ROWS) as pane:
        frames = Frames(pane)
        frames.wait(lambda f: len(f["rows"]) == 2, 10, "top to show both instances")
        narrow, short = 40, 7
        resized = time.monotonic()
        pane.resize(narrow, short)
        # 7 rows hold header, hint, titles, one instance, total, blank and footer: the footer
        # then says one instance is not shown. A line wider than 40 columns on the last row would
        # wrap and scroll the screen, and the header would no longer be the first line.
        text = wait_until(pane.screen, 5, 0.05, "a redraw for 40x7",
                          holds=lambda t: "1 instance not" in t)
        took = time.monotonic() - resized
        lines = text.splitlines()
        assert lines[0].startswith("tandemctl top") and lines[-1].startswith("q quit"), text
        assert len(lines) == short and all(len(line) <= narrow for line in lines), text
        assert sum(line.startswith("app-") for line in lines) == 1, text
        report(f"resized to {narrow}x{short}: redrawn in {took * 1000:.0f} ms, "
               f"header first, footer last:\n{text}")
        pane.resize(COLUMNS, ROWS)
        wide = frames.wait(lambda f: len(f["rows"]) == 2, 5, "a redraw for 100x20")
        assert all("unreachable: Connection refused" in row["line"]
                   for row in wide["rows"].values()), wide["text"]
        quit_and_check(pane, "q")


def test_haproxy_unreachable_is_shown_and_q_still_quits(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)
    ids = sorted(stack.instances)
    with TmuxPane(ctl.argv("--socket", "/nonexistent", "top"), COLUMNS, ROWS) as pane:
        frames = Frames(pane)
        first = frames.wait(lambda f: all(i in f["rows"] for i in ids), 10,
                            "top to show both instances")
        assert "haproxy unreachable: no HAProxy runtime socket at /nonexistent" in \
            first["header"], first["text"]
        assert "is HAProxy running on this host" in first["text"], first["text"]
        # It keeps refreshing (an operator watches HAProxy come back): the clock moves and the
        # instances, which answer, get rates.
        later = frames.wait(lambda f: f["clock"] != first["clock"]
                            and all(r is not None for r in rates_of(f, ids)), 5,
                            "a later frame with rates")
        assert all(later["rows"][i]["HAPROXY"] == "-" for i in ids), later["text"]
        report(f"HAProxy unreachable: header {later['header']!r}; frames at {first['clock']} "
               f"and {later['clock']}")
        quit_and_check(pane, "q", report)


def test_stopped_instance_row_says_unreachable(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    ctl = Tandemctl(stack)
    with TmuxPane(ctl.argv("top"), COLUMNS, ROWS) as pane:
        frames = Frames(pane)
        frames.wait(lambda f: "app-1" in f["rows"] and "app-2" in f["rows"], 10,
                    "top to show both instances")
        stack.stop_instance("app-1")
        assert stack.wait_instance_exit("app-1", timeout=10) == 0
        down = frames.wait(lambda f: "unreachable" in f["rows"].get("app-1", {}).get("line", "")
                           and f["rows"]["app-1"]["HAPROXY"] == "DOWN", 10,
                           "app-1's row to say unreachable and DOWN")
        assert "unreachable" not in down["rows"]["app-2"]["line"], down["text"]
        assert down["rows"]["app-2"]["HAPROXY"] == "UP", down["text"]
        report(f"app-1 stopped: {down['rows']['app-1']['line'].strip()!r}")
        quit_and_check(pane, "q")


def test_not_a_terminal_exits_2_pointing_at_status(tmp_path, report):
    binary = find_ctl_bin()
    # stdout a pipe.
    piped = subprocess.run([binary, "--config-dir", tmp_path, "top"], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=10, check=False)
    assert piped.returncode == 2, piped
    assert piped.stdout == "", "top drew on a pipe"
    assert "top needs a terminal, and its stdout is not one" in piped.stderr, piped.stderr
    assert "tandemctl status" in piped.stderr, piped.stderr
    report(f"stdout a pipe: exit 2, {piped.stderr.strip()!r}")
    # stdout a terminal, stdin not: keys cannot be read, refused the same way, terminal intact.
    with TmuxPane([binary, "--config-dir", tmp_path, "top"], COLUMNS, ROWS,
                  stdin="/dev/null") as pane:
        assert pane.wait_exit(timeout=5) == 2
        text = pane.screen(history=True)
        assert "top needs a terminal, and its stdin is not one" in text, text
        assert pane.terminal_restored() == []


def test_error_while_drawing_restores_the_terminal(tmp_path, report):
    # A socket path too long for a UNIX address is found on the first tick, once the screen is
    # taken: the exception unwinds through it, which gives the terminal back before the error
    # is printed.
    binary = find_ctl_bin()
    socket = "/tmp/" + "x" * 120
    with TmuxPane([binary, "--config-dir", tmp_path, "--socket", socket, "top"], COLUMNS,
                  ROWS) as pane:
        assert pane.wait_exit(timeout=5) == 2
        text = pane.screen(history=True)
        assert "tandemctl: socket path too long" in text, text
        assert pane.terminal_restored() == []
        report(f"exception inside the view: exit 2, {text.strip().splitlines()[0]!r}")


def test_bad_options_exit_2(tmp_path):
    binary = find_ctl_bin()
    for args in (["--bogus"], ["--interval", "0"], ["--interval", "soon"], ["extra"]):
        result = subprocess.run([binary, "--config-dir", tmp_path, "top", *args],
                                capture_output=True, text=True, timeout=10, check=False)
        assert result.returncode == 2, (args, result)
        assert result.stderr.strip(), (args, result)
