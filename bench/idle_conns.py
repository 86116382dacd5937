#!/usr/bin/env python3
"""Opens many idle HTTP keep-alive connections to one server and holds them until told to stop.

Each connection sends one `GET <path>` (HTTP/1.1, keep-alive) and reads the whole response, so the
server holds a real keep-alive connection that has served a request, not a bare accepted socket.
At most --window connections are being set up at once, so the server's listen backlog is never
flooded (a dropped SYN costs a one-second retransmit and would only slow the setup down).

Talks to its caller by lines:
  stdout  READY {"requested":N,"ok":K,"failed":F,"failures":{"<reason>":count,...},"seconds":S}
          once every connection has either answered 200 or failed (or --timeout has passed);
  stdin   "check"  -> stdout OPEN {"open":K,"closed":C}: how many of the K are still open;
          "quit" or end of input -> close everything and exit 0.
SIGTERM and SIGINT also end it (the kernel closes the sockets). Standard library only.
"""

import argparse
import errno
import json
import os
import resource
import select
import selectors
import socket
import sys
import time


class Conn:
    """One client connection and the response bytes read so far."""

    __slots__ = ("sock", "buf", "sent")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.sent = False


def raise_fd_limit(wanted):
    """Raises the soft RLIMIT_NOFILE to the hard limit; warns when even that is too small."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, wanted)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < wanted:
        print(f"idle_conns: the open-file limit is {target}, below the {wanted} needed; "
              "connections past it will fail with EMFILE", file=sys.stderr)


def parse_response(buf):
    """Returns (done, status, keep_alive) for the bytes of one response read so far."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False, 0, False
    head = buf[:end].decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    body = buf[end + 4:]
    if "content-length" in headers:
        done = len(body) >= int(headers["content-length"])
    elif headers.get("transfer-encoding", "").endswith("chunked"):
        done = body.endswith(b"0\r\n\r\n")
    else:
        # Neither length nor chunks: the body ends when the server closes, so no keep-alive.
        return True, status, False
    keep_alive = "close" not in headers.get("connection", "")
    return done, status, keep_alive


def open_all(args):
    """Sets up the connections; returns (open sockets, failure counts, seconds taken)."""
    request = (f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
               "User-Agent: tandem-idle-conns\r\nAccept: */*\r\n\r\n").encode()
    sel = selectors.DefaultSelector()
    ready = []
    failures = {}
    started = time.monotonic()
    deadline = started + args.timeout
    next_index = 0
    in_flight = 0
    stop_opening = False

    def fail(conn, reason):
        nonlocal in_flight
        failures[reason] = failures.get(reason, 0) + 1
        sel.unregister(conn.sock)
        conn.sock.close()
        in_flight -= 1

    while True:
        while not stop_opening and next_index < args.count and in_flight < args.window:
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as exc:
                # EMFILE here is this client's limit, not the server's: stop opening and say so.
                reason = f"client socket(): {errno.errorcode.get(exc.errno, exc.errno)}"
                failures[reason] = failures.get(reason, 0) + args.count - next_index
                stop_opening = True
                break
            sock.setblocking(False)
            next_index += 1
            in_flight += 1
            conn = Conn(sock)
            err = sock.connect_ex((args.host, args.port))
            sel.register(sock, selectors.EVENT_WRITE, conn)
            if err not in (0, errno.EINPROGRESS):
                fail(conn, f"connect: {errno.errorcode.get(err, err)}")
        if in_flight == 0:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            for key in list(sel.get_map().values()):
                fail(key.data, "timed out waiting for the response")
            failures["not attempted (timed out)"] = args.count - next_index
            break
        for key, _ in sel.select(timeout=min(remaining, 1.0)):
            conn = key.data
            sock = conn.sock
            if not conn.sent:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(conn, f"connect: {errno.errorcode.get(err, err)}")
                    continue
                try:
                    sock.send(request)  # Far below the socket buffer: one send writes it all.
                except OSError as exc:
                    fail(conn, f"send: {errno.errorcode.get(exc.errno, exc.errno)}")
                    continue
                conn.sent = True
                sel.modify(sock, selectors.EVENT_READ, conn)
                continue
            try:
                data = sock.recv(65536)
            except OSError as exc:
                fail(conn, f"recv: {errno.errorcode.get(exc.errno, exc.errno)}")
                continue
            if not data:
                fail(conn, "closed by the server before a whole response")
                continue
            conn.buf += data
            done, status, keep_alive = parse_response(conn.buf)
            if not done:
                continue
            if status != 200:
                fail(conn, f"HTTP status {status}")
            elif not keep_alive:
                fail(conn, "server ended keep-alive (Connection: close or no length)")
            else:
                sel.unregister(sock)
                in_flight -= 1
                conn.buf = b""
                ready.append(sock)
    sel.close()
    return ready, failures, time.monotonic() - started


def count_open(socks):
    """Counts sockets the server has not closed (no hang-up, no EOF waiting to be read)."""
    poller = select.poll()
    by_fd = {}
    for sock in socks:
        poller.register(sock.fileno(), select.POLLIN | select.POLLRDHUP)
        by_fd[sock.fileno()] = sock
    closed = 0
    for fd, events in poller.poll(0):
        if events & (select.POLLHUP | select.POLLERR | select.POLLRDHUP):
            closed += 1
            continue
        try:
            if by_fd[fd].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                closed += 1
        except OSError:
            closed += 1
    return len(socks) - closed, closed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="server address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="server port")
    parser.add_argument("--count", type=int, default=10000, help="connections (default 10000)")
    parser.add_argument("--path", default="/api/whoami", help="request path (default /api/whoami)")
    parser.add_argument("--window", type=int, default=256,
                        help="connections being set up at once (default 256)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds allowed for setting all of them up (default 60)")
    args = parser.parse_args()
    if args.count < 1 or args.window < 1 or args.timeout <= 0:
        parser.error("--count, --window and --timeout must be positive")

    raise_fd_limit(args.count + 16)
    socks, failures, seconds = open_all(args)
    summary = {"requested": args.count, "ok": len(socks), "failed": sum(failures.values()),
               "failures": failures, "seconds": round(seconds, 3)}
    print("READY " + json.dumps(summary), flush=True)

    for line in sys.stdin:
        command = line.strip()
        if command == "check":
            still_open, closed = count_open(socks)
            print("OPEN " + json.dumps({"open": still_open, "closed": closed}), flush=True)
        elif command == "quit":
            break
        elif command:
            print(f"idle_conns: unknown command {command!r} (expected check or quit)",
                  file=sys.stderr, flush=True)
    for sock in socks:
        sock.close()
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        # The caller went away; nothing is left to tell it.
        os._exit(0)
