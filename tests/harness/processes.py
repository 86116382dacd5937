"""Child processes of the harness: tracked from start to reaping, never left behind.

Each child runs in its own process group (so a HAProxy master and its worker go together) and,
when started from the main thread, with the parent-death signal set to SIGKILL (util-linux
`setpriv --pdeathsig`), so that even a harness killed with SIGKILL takes its children with it.
Every child not yet reaped is listed in a module registry; `stop_all` (registered with atexit, and
called by the stack's teardown) stops them: SIGTERM to the group, SIGKILL after a grace, then reap.
"""

import atexit
import os
import shutil
import signal
import subprocess
import threading
import time

_SETPRIV = shutil.which("setpriv")
_registry = set()
_registry_lock = threading.Lock()


class Process:
    """One child process with its output in a log file."""

    def __init__(self, name, argv, log_path, env=None):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        prefix = []
        # The parent-death signal fires when the thread that forked exits, so it is only set for
        # children started by the main thread (the one that lives as long as the harness).
        if _SETPRIV and threading.current_thread() is threading.main_thread():
            prefix = [_SETPRIV, "--pdeathsig", "KILL"]
        with open(log_path, "ab") as log:
            self._popen = subprocess.Popen(
                prefix + self.argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.pid = self._popen.pid
        self.started_at = time.monotonic()
        self.exited_at = None
        with _registry_lock:
            _registry.add(self)

    def __repr__(self):
        return f"<Process {self.name} pid={self.pid} returncode={self.returncode}>"

    @property
    def returncode(self):
        return self._popen.returncode

    def exited(self):
        """True once the process has exited; does not reap it (the group id stays reserved)."""
        if self._popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        if info is not None and self.exited_at is None:
            self.exited_at = time.monotonic()
        return info is not None

    def alive(self):
        return not self.exited()

    def send(self, sig):
        """Sends a signal to the process itself (not its group), if it still runs."""
        if not self.exited():
            os.kill(self.pid, sig)

    def wait(self, timeout):
        """Waits up to timeout seconds for an exit; returns True if it exited (not reaped)."""
        deadline = time.monotonic() + timeout
        while not self.exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, grace=5.0, sig=signal.SIGTERM):
        """Sends sig to the group, SIGKILL after grace seconds, then reaps; returns the exit
        code."""
        self.begin_stop(sig)
        return self.finish_stop(time.monotonic() + grace)

    def begin_stop(self, sig=signal.SIGTERM):
        if not self.exited():
            self._signal_group(sig)

    def finish_stop(self, deadline):
        if not self.wait(max(0.0, deadline - time.monotonic())):
            self._signal_group(signal.SIGKILL)
        # The leader is not reaped yet, so its group id cannot have been reused: whatever is left
        # in the group (a HAProxy worker whose master died, say) is ours to kill.
        self._signal_group(signal.SIGKILL)
        self._popen.wait()
        with _registry_lock:
            _registry.discard(self)
        return self._popen.returncode

    def _signal_group(self, sig):
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def stop_all(grace=5.0):
    """Stops every tracked child still running: all get SIGTERM at once, then SIGKILL."""
    with _registry_lock:
        processes = list(_registry)
    for process in processes:
        process.begin_stop()
    deadline = time.monotonic() + grace
    for process in processes:
        process.finish_stop(deadline)


atexit.register(stop_all)


def raise_on_termination():
    """Turns SIGTERM and SIGHUP into KeyboardInterrupt in the main thread, like Ctrl-C, so that
    context managers and test fixtures unwind and stop their processes."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"received {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def tail(path, lines=30):
    """The last lines of a log file, for error messages."""
    try:
        with open(path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 16384))
            text = log.read().decode("utf-8", "replace")
    except OSError as error:
        return f"({path}: {error.strerror})"
    return "\n".join(text.splitlines()[-lines:])
