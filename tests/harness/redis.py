"""A throw-away redis-server for the stack tests: loopback only, its own temporary directory,
always killed and reaped at the end.

    with RedisServer() as redis:                   # a free port, no persistence
        stack = Stack(session_store=redis.url)     # redis://127.0.0.1:<port>
        redis.session_count("abc")                 # requestCount of session abc, as stored
        redis.stop(); redis.start()                # down and up again on the SAME port
        redis.pause(); redis.resume()              # SIGSTOP / SIGCONT: a hung Redis

By default nothing is persisted (`--save '' --appendonly no`): stopping loses the data, like a
cache. `appendonly=True` keeps an append-only file in the temporary directory, so the data
survives stop() and start(). `password` sets `requirepass` (and the URL carries it).

`command(port, ...)` and `session_count(port, ...)` also speak to a Redis the harness did not
start (the one Ansible deploys in a system test's guest, say).
"""

import pathlib
import shutil
import signal
import socket
import tempfile
import time
import urllib.parse

from .lifecycle import Started
from .processes import Process, tail
from .stack import LOOPBACK, StackError, free_ports
from .waiting import wait_until

START_TIMEOUT = 10.0


class RedisError(StackError):
    pass


class RedisServer(Started):
    """One redis-server on 127.0.0.1:port, its data and log in workdir (a new temporary folder
    unless given); a context manager (started on enter, killed, reaped and removed on exit)."""

    def __init__(self, port=None, password=None, appendonly=False, workdir=None):
        self.port = port or free_ports(1)[0]
        self.password = password
        self.appendonly = appendonly
        self._own_workdir = workdir is None
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="tandem-redis-"))
        self.log_path = self.workdir / "redis.log"
        self.process = None
        self.paused = False

    @property
    def url(self):
        """The tandem-server --session-store value for this server."""
        credentials = f":{urllib.parse.quote(self.password, safe='')}@" if self.password else ""
        return f"redis://{credentials}{LOOPBACK}:{self.port}"

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, timeout=START_TIMEOUT):
        """Starts redis-server (again, on the same port and directory); waits until it answers
        PING."""
        if self.process is not None:
            raise RedisError(f"redis-server already runs (pid {self.process.pid})")
        argv = ["redis-server", "--bind", LOOPBACK, "--port", str(self.port),
                "--dir", str(self.workdir), "--daemonize", "no", "--logfile", "",
                "--save", "", "--appendonly", "yes" if self.appendonly else "no",
                "--appendfsync", "everysec"]
        if self.password:
            argv += ["--requirepass", self.password]
        self.process = Process(f"redis-{self.port}", argv, self.log_path)
        self.paused = False

        def ping():
            if self.process.exited():
                code = self._reap()
                raise RedisError(f"redis-server exited with {code} during start-up:\n"
                                 + tail(self.log_path))
            try:
                return self.command("PING")
            except (OSError, RedisError) as error:  # Not listening yet.
                return error

        wait_until(ping, timeout, 0.02, "redis-server to answer PING",
                   holds=lambda reply: reply == "PONG",
                   error=lambda _: RedisError(f"redis-server did not answer PING within "
                                              f"{timeout} s:\n" + tail(self.log_path)))
        return self

    def stop(self, sig=signal.SIGTERM, timeout=5.0):
        """Stops redis-server and reaps it (SIGTERM: a clean shutdown that flushes the
        append-only file; SIGKILL: a crash). Returns its exit code."""
        if self.process is None:
            raise RedisError("redis-server is not running")
        self.resume()
        self.process.send(sig)
        if not self.process.wait(timeout):
            self.process.send(signal.SIGKILL)
        return self._reap()

    def pause(self):
        """SIGSTOP: Redis hangs. The kernel still completes TCP handshakes and buffers what
        clients send; nothing is answered until resume()."""
        self.process.send(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        if self.process is not None and self.paused:
            self.process.send(signal.SIGCONT)
        self.paused = False

    def close(self):
        """Kills and reaps redis-server if it runs, and removes the temporary directory."""
        if self.process is not None:
            # Resumed first: a stopped process reacts to SIGKILL only, not to SIGTERM.
            self.resume()
            self.process.stop(grace=2.0)
            self.process = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _reap(self):
        code = self.process.finish_stop(time.monotonic())
        self.process = None
        return code

    # --- commands --------------------------------------------------------------------------

    def command(self, *args, timeout=2.0):
        """command() on this server."""
        return command(self.port, *args, password=self.password, timeout=timeout)

    def session_count(self, session_id):
        """session_count() on this server."""
        return session_count(self.port, session_id, password=self.password)


def command(port, *args, password=None, db=0, host=LOOPBACK, timeout=2.0):
    """Sends one command to the Redis at host:port (after AUTH and SELECT when needed) on a new
    connection; returns the reply: str, int, None or a list. An error reply raises RedisError."""
    commands = ([("AUTH", password)] if password else []) + ([("SELECT", db)] if db else [])
    commands.append(args)
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(b"".join(_encode(command) for command in commands))
        reader = sock.makefile("rb")
        replies = [_read_reply(reader) for _ in commands]
    return replies[-1]


def session_count(port, session_id, password=None, db=0, host=LOOPBACK):
    """requestCount of a tandem session as stored, or None if Redis has no such session."""
    value = command(port, "HGET", f"tandem:session:{session_id}", "requestCount",
                    password=password, db=db, host=host)
    return None if value is None else int(value)


def check_sessions(clients, stored_count):
    """After sticky clients (load.Client) each POSTed /api/session in turn: (problems, moved).
    A problem is a client whose answers show more than one session, a count that is not 1, 2, 3...
    in order, or a last count other than what Redis stored (stored_count(session_id)); moved is
    how many clients were answered by more than one instance."""
    problems, moved = [], 0
    for client in clients:
        answers = [o.json() for o in client.outcomes if o.ok]
        counts = [answer["requestCount"] for answer in answers]
        sessions = {answer["sessionId"] for answer in answers}
        moved += len({o.instance for o in client.outcomes if o.ok}) > 1
        stored = stored_count(answers[-1]["sessionId"]) if answers else None
        if len(sessions) != 1 or counts != list(range(1, len(counts) + 1)) \
                or stored != len(counts):
            problems.append(f"{client.name}: sessions {sessions}, counts {counts}, "
                            f"stored {stored}")
    return problems, moved


def check_sessions_across_failures(clients, stored_count):
    """check_sessions() for sticky clients some of whose requests failed because the instance
    serving them was lost with requests in flight: a POST that failed may or may not have been
    counted (Redis may have carried out an increment whose answer never arrived), so from one
    answer to the next the count may skip one number per failed request in between, and never
    more, never go back, never start a new session. A request the client sent a second time after
    its connection died unanswered (Outcome.resent) may have counted twice: one skip more.
    Redis holds the last answer's count plus at most the failures after it. Returns (problems,
    moved, skipped): moved as check_sessions's, skipped the numbers skipped in all (each one a
    failed or resent request that did count)."""
    problems, moved, skipped = [], 0, 0
    for client in clients:
        answers, failed_since = [], 0
        trouble = []
        previous = 0
        for outcome in client.outcomes:
            if not outcome.ok:
                failed_since += 1
                continue
            count = outcome.json()["requestCount"]
            jump = count - previous - 1
            if jump < 0 or jump > failed_since + outcome.resent:
                trouble.append(f"{previous} -> {count} with {failed_since} failed between")
            skipped += max(0, jump)
            previous, failed_since = count, 0
            answers.append(outcome.json())
        sessions = {answer["sessionId"] for answer in answers}
        moved += len({o.instance for o in client.outcomes if o.ok}) > 1
        stored = stored_count(answers[-1]["sessionId"]) if answers else None
        if not answers or len(sessions) != 1 or trouble \
                or not previous <= (stored or 0) <= previous + failed_since:
            problems.append(f"{client.name}: sessions {sessions}, {'; '.join(trouble) or 'in order'}"
                            f", last count {previous}, stored {stored}, {failed_since} failed "
                            "after it")
    return problems, moved, skipped


def _encode(args):
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(f"${len(data)}\r\n".encode() + data + b"\r\n")
    return b"".join(parts)


def _read_reply(reader):
    line = reader.readline()
    if not line.endswith(b"\r\n"):
        raise RedisError("Redis closed the connection")
    kind, rest = line[:1], line[1:-2].decode()
    if kind == b"+":
        return rest
    if kind == b"-":
        raise RedisError(rest)
    if kind == b":":
        return int(rest)
    if kind == b"$":
        length = int(rest)
        if length < 0:
            return None
        data = reader.read(length + 2)
        return data[:-2].decode()
    if kind == b"*":
        count = int(rest)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise RedisError(f"unexpected reply {line[:100]!r}")
