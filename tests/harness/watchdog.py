"""systemd's side of sd_notify for the local stack: a datagram socket handed to the instances as
NOTIFY_SOCKET, with WATCHDOG_USEC set as `WatchdogSec=` would set it, recording every
notification each instance sends (READY=1, WATCHDOG=1, STOPPING=1) with the sender's pid and the
time it arrived.

A test then asks what systemd would have done: `longest_gap(pid)` is the longest time between two
watchdog pings of that process (or since its last one), and `would_have_restarted(pid)` is true
when that exceeds the watchdog interval, which is when systemd sends SIGABRT and restarts the
unit (NRestarts + 1). The real unit is exercised by the system tests; this lets every stack test
that loads an instance check the same promise without a systemd.
"""

import os
import socket
import struct
import threading
import time

# As in systemd/tandem@.service (WatchdogSec=5s): the instances ping every half of it.
WATCHDOG_USEC = 5_000_000
_UCRED = struct.Struct("iII")  # pid, uid, gid


class WatchdogMonitor:
    """Listens on `path` in a thread from start() to close()."""

    def __init__(self, path, usec=WATCHDOG_USEC):
        self.path = str(path)
        self.usec = usec
        self.messages = []  # (monotonic time, pid, {"WATCHDOG": "1", ...})
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # The kernel attaches the sender's credentials, as it does for systemd's own socket.
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock.bind(self.path)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)

    def env(self):
        """The variables systemd gives a Type=notify unit with WatchdogSec set."""
        return {"NOTIFY_SOCKET": self.path, "WATCHDOG_USEC": str(self.usec)}

    def start(self):
        self._thread.start()
        return self

    def close(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._sock.close()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def _run(self):
        while not self._stop.is_set():
            try:
                data, ancillary, _, _ = self._sock.recvmsg(4096, socket.CMSG_SPACE(_UCRED.size))
            except socket.timeout:
                continue
            except OSError:
                return
            pid = 0
            for level, kind, payload in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = _UCRED.unpack(payload[:_UCRED.size])[0]
            fields = dict(line.split("=", 1) for line in data.decode(errors="replace").splitlines()
                          if "=" in line)
            with self._lock:
                self.messages.append((time.monotonic(), pid, fields))

    def pings(self, pid):
        """Arrival times of pid's WATCHDOG=1 pings."""
        with self._lock:
            return [when for when, sender, fields in self.messages
                    if sender == pid and fields.get("WATCHDOG") == "1"]

    def longest_gap(self, pid, until=None):
        """The longest time between two of pid's pings, counting up to `until` (default: now)
        after the last one; None when it never pinged."""
        pings = self.pings(pid)
        if not pings:
            return None
        end = time.monotonic() if until is None else until
        return max(b - a for a, b in zip(pings, pings[1:] + [end]))

    def would_have_restarted(self, pid, until=None):
        gap = self.longest_gap(pid, until)
        return gap is None or gap > self.usec / 1e6
