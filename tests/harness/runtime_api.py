"""HAProxy's runtime API (the admin unix socket): one command per connection, as scripts use it.

    api = RuntimeApi("/run/haproxy/admin.sock")
    api.server_status("tandem", "app-1")          # "UP", "DOWN", "DRAIN", "MAINT", "UP 1/2", ...
    api.set_server_state("tandem", "app-1", "drain")
"""

import csv
import io
import socket
import time

from .poller import Poller

SERVER_STATES = ("ready", "drain", "maint")


class RuntimeApiError(RuntimeError):
    pass


class RuntimeApi:
    def __init__(self, path, timeout=5.0):
        self.path = str(path)
        self.timeout = timeout

    def command(self, line):
        """Sends one command and returns HAProxy's whole answer as text."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            sock.connect(self.path)
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", "replace")

    def show_stat(self):
        """`show stat` as a list of dicts keyed by the CSV header (pxname, svname, status, ...)."""
        text = self.command("show stat")
        if not text.startswith("# "):
            raise RuntimeApiError(f"unexpected answer to show stat: {text[:200]!r}")
        return list(csv.DictReader(io.StringIO(text[2:])))

    def server_stat(self, backend, server):
        for row in self.show_stat():
            if row["pxname"] == backend and row["svname"] == server:
                return row
        raise RuntimeApiError(f"no server {backend}/{server} in show stat")

    def server_status(self, backend, server):
        """The stats status: UP, DOWN, DRAIN, MAINT, NOLB, or a transition such as "UP 1/2"."""
        return self.server_stat(backend, server)["status"]

    def statuses(self, backend):
        """{server name: status} for every server of a backend."""
        return {row["svname"]: row["status"] for row in self.show_stat()
                if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")}

    def servers_state(self, backend=None):
        """`show servers state [backend]` as a list of dicts keyed by its header (srv_name,
        srv_op_state, srv_admin_state, ...)."""
        text = self.command("show servers state" + (f" {backend}" if backend else ""))
        lines = text.splitlines()
        header = next((line for line in lines if line.startswith("# ")), None)
        if not lines or lines[0].strip() != "1" or header is None:
            raise RuntimeApiError(f"unexpected answer to show servers state: {text[:200]!r}")
        names = header[2:].split()
        rows = []
        for line in lines:
            if line.strip() and not line.startswith("#") and line.strip() != "1":
                rows.append(dict(zip(names, line.split())))
        return rows

    def set_server_state(self, backend, server, state):
        """`set server <backend>/<server> state ready|drain|maint`; raises on any answer but
        the empty one HAProxy gives on success."""
        if state not in SERVER_STATES:
            raise ValueError(f"state must be one of {SERVER_STATES}, not {state!r}")
        answer = self.command(f"set server {backend}/{server} state {state}").strip()
        if answer:
            raise RuntimeApiError(f"set server {backend}/{server} state {state}: {answer}")

    def replace_certificate(self, path, pem):
        """Serves `pem` (certificate, chain, key) in place of the certificate HAProxy loaded from
        `path`: `set ssl cert` with the PEM as payload, then `commit ssl cert`, as the tandem_lb
        role does. Raises with HAProxy's answer unless both succeed."""
        staged = self.command(f"set ssl cert {path} <<\n{pem.rstrip()}\n")
        if "Transaction created" not in staged and "Transaction updated" not in staged:
            raise RuntimeApiError(f"set ssl cert {path}: {staged.strip()}")
        committed = self.command(f"commit ssl cert {path}")
        if "Success!" not in committed:
            raise RuntimeApiError(f"commit ssl cert {path}: {committed.strip()}")

    def table(self, name):
        """`show table <name>`: the stick-table's entries as a list of dicts, each with "key" and
        its stored counters by name as HAProxy shows them ("conn_cur", "http_req_rate(10000)",
        ...), values as text."""
        text = self.command(f"show table {name}")
        if not text.startswith("# table:"):
            raise RuntimeApiError(f"unexpected answer to show table {name}: {text[:200]!r}")
        entries = []
        for line in text.splitlines()[1:]:
            if ": key=" not in line:
                continue
            fields = line.split(": ", 1)[1].split()
            entries.append(dict(field.split("=", 1) for field in fields if "=" in field))
        return entries

    def table_entry(self, name, key):
        """The entry of `key` in stick-table `name` (see table()), or None."""
        return next((entry for entry in self.table(name) if entry.get("key") == key), None)

    def worker_pid(self):
        """The pid of the HAProxy process answering (`show info` Pid), which a reload changes."""
        for line in self.command("show info").splitlines():
            if line.startswith("Pid:"):
                return int(line.split(":", 1)[1])
        raise RuntimeApiError("show info has no Pid line")


def is_up(status):
    """UP, or UP on its way down ("UP 1/2"): the server still takes traffic."""
    return status == "UP" or status.startswith("UP ")


def is_down(status):
    """DOWN, or DOWN on its way up ("DOWN 1/2"): health checks have taken it out."""
    return status == "DOWN" or status.startswith("DOWN ")


class StatusMonitor(Poller):
    """Polls one server's status in a thread and records every change with its time
    (time.monotonic()), to measure how long HAProxy takes to notice a death or a recovery."""

    def __init__(self, api, backend, server, interval=0.05):
        super().__init__(interval, name=f"monitor-{server}")
        self.api = api
        self.backend = backend
        self.server = server
        self.changes = []  # (monotonic time, status), the first entry being the initial status
        self.errors = 0
        self._last = None

    def sample(self):
        try:
            status = self.api.server_status(self.backend, self.server)
        except (OSError, RuntimeApiError):
            # A reload replaces the socket for a moment; a gap is recorded, not fatal.
            self.errors += 1
            return
        if status != self._last:
            self.changes.append((time.monotonic(), status))
            self._last = status

    def first(self, predicate, after):
        """The time of the first recorded status at or after `after` that satisfies predicate."""
        for when, status in self.changes:
            if when >= after and predicate(status):
                return when
        return None

    def status_at(self, when):
        current = None
        for changed, status in self.changes:
            if changed > when:
                break
            current = status
        return current


class RotationMonitor(Poller):
    """Reads every server's status of a backend from the runtime API every `interval` seconds, in
    a thread; a server is in rotation while its status is UP (or "UP 1/2", UP and failing). For
    watching a roll, a failover or a deployment: how many were in rotation at every moment, and
    the states each server went through."""

    def __init__(self, socket_path, backend, interval=0.1):
        super().__init__(interval, name="rotation-monitor")
        self.api = RuntimeApi(socket_path, timeout=2.0)
        self.backend = backend
        self.samples = []  # (monotonic time, {server: status})
        self.errors = 0

    def sample(self):
        try:
            statuses = self.api.statuses(self.backend)
            self.samples.append((time.monotonic(), statuses))
        except (OSError, RuntimeApiError):
            self.errors += 1  # A reload replaces the socket for a moment.

    def in_rotation(self):
        return [sum(is_up(status) for status in statuses.values())
                for _, statuses in self.samples]

    def states_seen(self, server):
        """The server's statuses in the order seen, each change once ("" while it is absent)."""
        seen = []
        for _, statuses in self.samples:
            status = statuses.get(server, "")
            if (status or seen) and (not seen or seen[-1] != status):
                seen.append(status)
        return seen

    def first_time(self, server, predicate, after=None):
        """When the server's status first satisfied predicate (monotonic), at or after `after`
        if given; None if it never did."""
        return next((when for when, statuses in self.samples
                     if (after is None or when >= after) and predicate(statuses.get(server, ""))),
                    None)

    def timeline(self, since):
        """[(seconds since `since`, servers in rotation, {server: status})] at every change of
        any server's status."""
        changes = []
        for when, statuses in self.samples:
            if not changes or changes[-1][2] != statuses:
                changes.append((when - since, sum(is_up(s) for s in statuses.values()), statuses))
        return changes

    def longest_gap(self):
        times = [when for when, _ in self.samples]
        return max((b - a for a, b in zip(times, times[1:])), default=0.0)


class SourceSampler(Poller):
    """Polls, in a thread, how many connections HAProxy holds from one client address (its
    stick-table entry's conn_cur, `key` as HAProxy shows it: "::ffff:127.0.0.1" in an IPv6 table)
    and in all on a frontend (scur), to check a per-source limit while something floods it."""

    def __init__(self, api, frontend, key, interval=0.1):
        super().__init__(interval, name=f"source-{key}")
        self.api = api
        self.frontend = frontend
        self.key = key
        self.conn_cur = []  # samples of the address's open connections
        self.frontend_cur = []  # samples of the frontend's
        self.times = []  # when each sample was taken (time.monotonic())
        self.errors = 0

    def conn_cur_between(self, start, end):
        """The address's samples taken between start and end (monotonic times)."""
        return [value for when, value in zip(self.times, self.conn_cur) if start <= when <= end]

    def sample(self):
        try:
            entry = self.api.table_entry(self.frontend, self.key)
            rows = self.api.show_stat()
        except (OSError, RuntimeApiError):
            self.errors += 1
            return
        self.times.append(time.monotonic())
        self.conn_cur.append(int(entry["conn_cur"]) if entry else 0)
        self.frontend_cur.extend(int(row["scur"]) for row in rows
                                 if row["pxname"] == self.frontend and row["svname"] == "FRONTEND")
