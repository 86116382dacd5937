#!/usr/bin/env python3
"""A TLS handshake flood: new connections from one source address, each completing a handshake
and closing without a request, as fast as a few threads manage, bounded in count and time.

    python3 -m tests.harness.tls_flood --port 8443 --source 127.0.0.1 --seconds 6

Runs in its own process so that its threads do not take the interpreter from the client a test
watches. Prints one line at the end, then exits 0:
  DONE {"attempts":A,"handshakes":H,"refused":R,"seconds":S}
refused: reset, closed or failed before the handshake completed. Standard library only.
"""

import argparse
import json
import socket
import ssl
import sys
import threading
import time


def flood(host, port, source, seconds, threads, max_attempts):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # The flood does not care whose certificate it is.
    counts = {"attempts": 0, "handshakes": 0, "refused": 0}
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + seconds

    def loop():
        while time.monotonic() < deadline:
            with lock:
                if counts["attempts"] >= max_attempts:
                    return
                counts["attempts"] += 1
            try:
                with socket.create_connection((host, port), timeout=2,
                                              source_address=(source, 0)) as raw:
                    with context.wrap_socket(raw, server_hostname="localhost"):
                        outcome = "handshakes"
            except (OSError, ssl.SSLError):
                outcome = "refused"
            with lock:
                counts[outcome] += 1

    workers = [threading.Thread(target=loop, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(seconds + 10)
    counts["seconds"] = time.monotonic() - started
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="127.0.0.1", help="address to connect from")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--max-attempts", type=int, default=40_000)
    args = parser.parse_args(argv)
    counts = flood(args.host, args.port, args.source, args.seconds, args.threads,
                   args.max_attempts)
    print("DONE " + json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
