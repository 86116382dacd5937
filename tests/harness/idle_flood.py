#!/usr/bin/env python3
"""An idle-connection flood: many TCP connections from one source address that never send a byte.

    python3 -m tests.harness.idle_flood --port 8080 --source 127.0.0.1 --count 12000 --seconds 10

Opens --count connections to --host:--port from --source, all at once (nonblocking connects, as
fast as the kernel takes them), and holds them idle. A connection the server closes (refused over
a per-source limit, or cut by its request timeout) is opened again at once, as a determined
attacker would, until --seconds have passed since the start; then every socket is closed.

Talks to its caller by lines on stdout (the harness logs them to a file):
  READY {"attempted":N,"open":K,"closed_by_server":C,"seconds":S}   once all N have been tried
  DONE {"attempts":A,"connected":K,"closed_by_server":C,"most_open":M,"open_at_end":E,
        "connect_errors":{"<errno name>":count,...},"seconds":S}    at the end, then exit 0
"open" counts the connections the client still holds (it may not have seen a close yet); the
server's own count is what a test should trust. Exit status 77: the descriptor limit cannot be
raised to --count. Standard library only.
"""

import argparse
import errno
import json
import resource
import selectors
import socket
import sys
import time

SPARE_FDS = 64  # Descriptors beyond the connections: stdio, the selector, Python's own.


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return True
    if hard != resource.RLIM_INFINITY and hard < wanted:
        return False
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return True


class Flood:
    def __init__(self, host, port, source):
        self.address = (host, port)
        self.source = source
        self.selector = selectors.DefaultSelector()
        self.open = 0
        self.attempts = 0
        self.connected = 0
        self.closed_by_server = 0
        self.most_open = 0
        self.errors = {}

    def connect(self):
        """Starts one nonblocking connection; False if the kernel refused to even start it."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.attempts += 1
        try:
            sock.setblocking(False)
            sock.bind((self.source, 0))
            code = sock.connect_ex(self.address)
        except OSError as error:
            sock.close()
            self._error(error.errno)
            return False
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self._error(code)
            return False
        # Writable once connected (or failed); readable when the server closes it.
        self.selector.register(sock, selectors.EVENT_WRITE, "connecting")
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        return True

    def _error(self, code):
        name = errno.errorcode.get(code, str(code))
        self.errors[name] = self.errors.get(name, 0) + 1

    def poll(self, timeout):
        """Handles what happened on the sockets; returns how many were closed (to reopen)."""
        closed = 0
        for key, _ in self.selector.select(timeout):
            sock = key.fileobj
            if key.data == "connecting":
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    self._error(code)
                    self._drop(sock)
                    closed += 1
                    continue
                self.connected += 1
                self.selector.modify(sock, selectors.EVENT_READ, "open")
                continue
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data:  # Closed (or reset) by the server; an answer (a 408) is read first.
                self.closed_by_server += 1
                self._drop(sock)
                closed += 1
        return closed

    def _drop(self, sock):
        self.selector.unregister(sock)
        sock.close()
        self.open -= 1

    def close(self):
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()
        self.selector.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="127.0.0.1", help="local address to connect from")
    parser.add_argument("--count", type=int, required=True, help="connections held at once")
    parser.add_argument("--seconds", type=float, required=True, help="how long the flood lasts")
    args = parser.parse_args(argv)
    if not raise_fd_limit(args.count + SPARE_FDS):
        print(f"idle_flood: cannot raise the descriptor limit to {args.count + SPARE_FDS}",
              file=sys.stderr)
        return 77

    start = time.monotonic()
    deadline = start + args.seconds
    flood = Flood(args.host, args.port, args.source)
    to_open = args.count
    ready = False
    try:
        while time.monotonic() < deadline:
            # Open what is missing, in batches so that closes are noticed in between. A connect
            # the kernel refuses at once is tried again after the next poll, not in a tight loop.
            batch = min(to_open, 500)
            failed = sum(not flood.connect() for _ in range(batch))
            to_open -= batch
            if not ready and flood.attempts >= args.count:
                ready = True
                print("READY " + json.dumps({
                    "attempted": flood.attempts, "open": flood.open,
                    "closed_by_server": flood.closed_by_server,
                    "seconds": round(time.monotonic() - start, 3)}), flush=True)
            wait = 0.0 if to_open and not failed else 0.05
            to_open += failed + flood.poll(max(0.0, min(wait, deadline - time.monotonic())))
        print("DONE " + json.dumps({
            "attempts": flood.attempts, "connected": flood.connected,
            "closed_by_server": flood.closed_by_server, "most_open": flood.most_open,
            "open_at_end": flood.open, "connect_errors": flood.errors,
            "seconds": round(time.monotonic() - start, 3)}), flush=True)
    finally:
        flood.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
