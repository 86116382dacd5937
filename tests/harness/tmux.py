"""A real terminal for the tests of full-screen commands (tandemctl top): a tmux server of the
test's own (its socket in a fresh folder, never the operator's server), one detached session of
fixed size whose pane runs one command.

    with TmuxPane([ctl, "--config-dir", folder, "top"], columns=100, rows=20) as pane:
        wait_until(lambda: "app-1" in pane.screen(), 10)
        pane.send_keys("q")
        assert pane.wait_exit(timeout=3) == 0
        assert pane.terminal_restored() == []

The command runs under sh, which records the terminal's settings (stty -g) before and after it,
and its exit status; everything written to the pane is recorded too (pipe-pane), from before the
command starts. The pane stays once the command has exited (remain-on-exit), so that its last
screen can be read. Leaving the block kills the tmux server, and the
command with it if it still runs: nothing is left running.
"""

import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import tempfile

from .waiting import wait_until

SESSION = "pane"


class TmuxError(RuntimeError):
    pass


class TmuxPane:
    """argv: the command; stdin: a file to redirect its stdin from (None: the terminal)."""

    def __init__(self, argv, columns=100, rows=24, stdin=None):
        if shutil.which("tmux") is None:
            raise TmuxError("tmux is not installed (packaging/install-deps.sh test)")
        self.argv = [str(arg) for arg in argv]
        self.columns = columns
        self.rows = rows
        self.stdin = stdin
        # A short folder of its own: a UNIX socket's path must fit in 108 bytes.
        self.folder = pathlib.Path(tempfile.mkdtemp(prefix="tmux-"))
        self.socket = self.folder / "socket"
        self.command_pid = None
        self.server_pid = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def _tmux(self, *args, check=True):
        env = {key: value for key, value in os.environ.items() if key != "TMUX"}
        result = subprocess.run(["tmux", "-S", str(self.socket), *map(str, args)], env=env,
                                capture_output=True, text=True, timeout=10, check=False)
        if check and result.returncode != 0:
            raise TmuxError(f"tmux {' '.join(map(str, args))}: {result.stderr.strip()}")
        return result.stdout

    def start(self):
        before, after = self.folder / "stty.before", self.folder / "stty.after"
        redirect = f" < {shlex.quote(str(self.stdin))}" if self.stdin else ""
        script = self.folder / "pane.sh"
        go, pid = self.folder / "go", self.folder / "pid"
        # The command waits for `go`, created once pipe-pane records: none of its output is lost.
        script.write_text(f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.01; done\n"
                          f"stty -g > {shlex.quote(str(before))}\n"
                          f"sh -c 'echo $$ > {shlex.quote(str(pid))}; exec \"$@\"' sh "
                          f"{shlex.join(self.argv)}{redirect}\n"
                          "status=$?\n"
                          f"stty -g > {shlex.quote(str(after))}\n"
                          f"echo $status > {shlex.quote(str(self.folder / 'status'))}\n"
                          "exit $status\n")
        conf = self.folder / "tmux.conf"
        # remain-on-exit from the server's start, so that even a command exiting at once leaves
        # its pane (and exit status) behind.
        conf.write_text("set -g remain-on-exit on\n")
        self._tmux("-f", conf, "new-session", "-d", "-s", SESSION, "-x", self.columns,
                   "-y", self.rows, f"sh {shlex.quote(str(script))}")
        self.server_pid = int(self.value("#{pid}"))
        self.output = self.folder / "output"
        self._tmux("pipe-pane", "-t", SESSION, f"cat >> {shlex.quote(str(self.output))}")
        go.touch()
        # The command's own pid, which an inner sh writes before it becomes the command.
        self.command_pid = int(wait_until(lambda: pid.read_text().strip(), 5,
                                          what="the pane's command to start", ignore=(OSError,)))

    def value(self, format_string):
        """A tmux format of the pane (#{pane_dead}, #{alternate_on}, ...)."""
        return self._tmux("display-message", "-p", "-t", SESSION, format_string).strip()

    def screen(self, history=False):
        """What the pane shows now, as text (no colours), one line per row; with history, the
        lines scrolled off above it too (tmux scrolls a line off when the pane dies)."""
        return self._tmux("capture-pane", "-p", "-t", SESSION, *(["-S", "-"] if history else []))

    def send_keys(self, *keys):
        self._tmux("send-keys", "-t", SESSION, *keys)

    def resize(self, columns, rows):
        self._tmux("resize-window", "-t", SESSION, "-x", columns, "-y", rows)
        self.columns, self.rows = columns, rows

    def dead(self):
        return self.value("#{pane_dead}") == "1"

    def wait_exit(self, timeout):
        """The command's exit status, once it (and its wrapper) has exited.

        From the wrapper, which writes it down: tmux 3.3a's #{pane_dead_status} stays empty for
        good when the pane's terminal closes before tmux reaps its process (tmux/tmux#4841), as
        it does now and then for a command that exits at once. When tmux has it, the two must
        agree."""
        status_file = self.folder / "status"
        status = wait_until(lambda: self.dead() and status_file.read_text().strip(), timeout,
                            what="the pane's command to exit", ignore=(OSError,))
        status = int(status)
        reported = self.value("#{pane_dead_status}")
        if reported and int(reported) != status:
            raise TmuxError(f"tmux says the pane exited {reported}, its wrapper {status}")
        return status

    def terminal_restored(self):
        """What the command left changed in its terminal, once it has exited: [] when nothing
        (termios settings as before it, the normal screen, the cursor shown)."""
        left = []
        before = (self.folder / "stty.before").read_text()
        after = (self.folder / "stty.after").read_text()
        if before != after:
            left.append(f"termios settings {after.strip()} instead of {before.strip()}")
        if self.value("#{alternate_on}") != "0":
            left.append("still in the alternate screen")
        # tmux hides the cursor of a dead pane, so the last word on it is read from the output:
        # shown again (CSI ?25h) after it was last hidden (CSI ?25l). Waited for a moment, as
        # pipe-pane's cat may lag behind the pane.
        def cursor_shown():
            output = self.output.read_bytes() if self.output.exists() else b""
            return output.rfind(b"\033[?25h") >= output.rfind(b"\033[?25l")

        try:
            wait_until(cursor_shown, 2, what="the cursor shown again")
        except Exception:
            left.append("cursor left hidden")
        return left

    def command_alive(self):
        return self.command_pid is not None and _alive(self.command_pid)

    def close(self):
        """Kills the tmux server (SIGHUP to what runs in the pane), then SIGKILL to the command
        and the server if they are still there after a bound."""
        self._tmux("kill-server", check=False)
        for pid in (self.command_pid, self.server_pid):
            if pid is None:
                continue
            try:
                wait_until(lambda p=pid: not _alive(p), 5, what=f"process {pid} to end")
            except Exception:
                _kill(pid)
        shutil.rmtree(self.folder, ignore_errors=True)


def _alive(pid):
    """Running: not gone, and not a zombie waiting for its parent to reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
