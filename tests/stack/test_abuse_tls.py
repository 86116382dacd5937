"""One client address cannot take HTTPS from everyone else: a TLS handshake flood and an HTTP/2
request flood from 127.0.0.1, while a client on 127.0.0.2 sends its requests over HTTPS and is
watched. The per-source limits at their deployed defaults (haproxy/README.md, "Per-source
limits" and "TLS").

A full handshake is the costliest thing a client can ask of HAProxy's thread (a signature and a
key exchange, where a request costs a few microseconds): the connection rate per source closes a
reconnect loop's connections before their handshake. HTTP/2 puts up to 100 requests on one
connection at once: the request rate counts each of them.
"""

import json
import re
import subprocess
import sys
import time

import pytest

from tests.harness import load, procstat
from tests.harness.tls_visitors import NewVisitors

# h2load cannot choose its source address: the HTTP/2 flood comes from 127.0.0.1, and its watched
# client from 127.0.0.2. The handshake flood comes from 127.0.0.3, and its watched client is a
# visitor from 127.0.0.1 whose every request comes on a new, verified TLS connection.
FLOOD_SOURCE = "127.0.0.1"
CLIENT_SOURCE = "127.0.0.2"
HANDSHAKE_FLOOD_SOURCE = "127.0.0.3"
CLIENT_RATE = 100  # requests per second of the watched client ...
CLIENT_SECONDS = 8  # ... for this long
# ... or, when each request comes on a new connection, below the deployed connection rate
# (1,000 per 10 s): a visitor whose every request is a new handshake.
NEW_VISITOR_RATE = 40
FLOOD_SECONDS = 6
FLOOD_THREADS = 4
FLOOD_MAX_ATTEMPTS = 40_000  # a bound on the loop, whatever the machine's speed
RATE_SLACK = 1.2  # HAProxy's sliding period lets a little more through at a period's edge
P99_WITHIN = 0.100  # seconds, for the watched client's HTTPS requests, each a full handshake


def handshake_flood(port, seconds):
    """The flood of tests/harness/tls_flood.py from HANDSHAKE_FLOOD_SOURCE, in its own process,
    bounded by FLOOD_MAX_ATTEMPTS; returns its DONE summary."""
    result = subprocess.run([sys.executable, "-m", "tests.harness.tls_flood", "--port",
                             str(port), "--source", HANDSHAKE_FLOOD_SOURCE,
                             "--seconds", str(seconds),
                             "--threads", str(FLOOD_THREADS), "--max-attempts",
                             str(FLOOD_MAX_ATTEMPTS)],
                            capture_output=True, text=True, timeout=seconds + 30, check=False)
    done = [line for line in result.stdout.splitlines() if line.startswith("DONE ")]
    assert result.returncode == 0 and done, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(done[-1].split(" ", 1)[1])


def watched_client(stack, http2=False):
    return load.PacedLoad(stack.https_url("/api/whoami"), rate=CLIENT_RATE,
                          duration=CLIENT_SECONDS, source=CLIENT_SOURCE, ca_file=stack.ca_file,
                          http2=http2)


@pytest.mark.parametrize("limited", [True, False], ids=["deployed", "without-connection-rate"])
def test_handshake_flood_is_cut_before_the_handshake(make_stack, report, limited):
    """With the deployed connection rate, the flood's handshakes stop at the limit and HAProxy's
    thread stays available; without it (shown for comparison, not asserted beyond the watched
    client) every attempt costs HAProxy a full handshake."""
    overrides = {} if limited else {"tandem_lb_source_connection_rate": 0}
    stack = make_stack(instances=2, overrides=overrides)
    limit = stack.variables["tandem_lb_source_connection_rate"]
    period = stack.variables["tandem_lb_source_rate_period"]
    haproxy = stack.api.worker_pid()
    visitors = NewVisitors(stack.https_port, stack.ca_file, NEW_VISITOR_RATE, CLIENT_SECONDS)
    visitors.start()
    time.sleep(1.0)
    cpu_before, started = procstat.cpu_seconds(haproxy), time.monotonic()
    flood = handshake_flood(stack.https_port, FLOOD_SECONDS)
    haproxy_share = (procstat.cpu_seconds(haproxy) - cpu_before) / (time.monotonic() - started)
    visitors.join()

    failed = visitors.failures()
    p99 = load.percentile(visitors.latencies(), 0.99)
    described = f"limit {limit} per {period} s" if limited else "no connection rate limit"
    report(f"handshake flood from {HANDSHAKE_FLOOD_SOURCE} ({described}): {flood['attempts']} "
           f"connections in {FLOOD_SECONDS} s, {flood['handshakes']} handshakes completed, "
           f"{flood['refused']} refused; HAProxy's thread {haproxy_share:.0%} busy meanwhile")
    report(f"visitor on 127.0.0.1, a new HTTPS connection per request: "
           f"{len(visitors.results)} requests, {len(failed)} failed, p99 {p99 * 1000:.1f} ms")
    assert len(visitors.results) == NEW_VISITOR_RATE * CLIENT_SECONDS
    assert not failed, failed[:5]
    assert p99 < P99_WITHIN
    if limited:
        assert flood["handshakes"] <= limit * RATE_SLACK
        assert flood["refused"] > flood["handshakes"]


def test_http2_request_flood_gets_429_while_another_address_is_served(make_stack, report):
    """h2load from FLOOD_SOURCE: 4 connections of 100 concurrent streams each, for 5 s. Every
    stream counts against the request rate: at most the limit is served, the rest is 429; the
    watched client's HTTP/2 requests all succeed, those sent during the flood within
    P99_WITHIN (p99)."""
    stack = make_stack(instances=2)
    limit = stack.variables["tandem_lb_source_request_rate"]
    client = watched_client(stack, http2=True)
    client.start()
    # The client's first requests open its connections, each a first TLS handshake of a fresh
    # libcurl handle (100-150 ms on this machine with nothing else running): the flood starts
    # once it is under way, and its latency is read over the requests sent during the flood.
    time.sleep(1.0)
    flood_started = time.monotonic()
    flood = subprocess.run(["h2load", "-c", "4", "-m", "100", "-D", "5", "-t", "1",
                            stack.https_url("/api/whoami")], capture_output=True, text=True,
                           timeout=60, check=False)
    flood_ended = time.monotonic()
    outcomes = client.join()
    during = [o for o in outcomes if flood_started <= o.started < flood_ended]
    assert flood.returncode == 0, flood.stdout[-2000:] + flood.stderr[-2000:]
    protocol = re.search(r"Application protocol: (\S+)", flood.stdout)
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", flood.stdout)
    assert protocol and codes, flood.stdout[-2000:]
    served, _, refused, errors = (int(n) for n in codes.groups())

    failed = [o for o in outcomes if not o.ok]
    p99 = load.percentile(load.latencies(during), 0.99)
    report(f"HTTP/2 flood from {FLOOD_SOURCE} (h2load, {protocol.group(1)}, 4 x 100 streams, "
           f"5 s): {served} served, {refused} refused (4xx), {errors} 5xx (limit {limit})")
    report(f"client on {CLIENT_SOURCE} over HTTP/2: {len(outcomes)} requests, {len(failed)} "
           f"failed; the {len(during)} sent during the flood: p99 {p99 * 1000:.1f} ms")
    assert protocol.group(1) == "h2"
    assert served <= limit * RATE_SLACK and refused > served and errors == 0
    assert {o.http_version for o in outcomes} == {"2"}
    assert not failed, [(o.status, o.error) for o in failed[:5]]
    assert len(during) >= 4 * CLIENT_RATE
    assert p99 < P99_WITHIN
