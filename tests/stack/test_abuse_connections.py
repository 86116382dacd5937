"""One client address cannot take the balancer from everyone else: an idle-connection flood and a
request flood from 127.0.0.1, while a client on another address (127.0.0.2) is watched. HAProxy's
per-source limits (haproxy/README.md, "Per-source limits") at their deployed defaults.

Also what HAProxy 2.6 does with a new connection that sends nothing: it is closed after timeout
http-request, before an idle keep-alive connection would be (timeout http-keep-alive).
"""

import json
import socket
import sys
import time

import pytest

from tests.harness import load
from tests.harness.processes import Process, tail
from tests.harness.runtime_api import SourceSampler
from tests.harness.waiting import wait_until
from tests.harness.wrk_flood import wrk_flood

FLOOD_SOURCE = "127.0.0.1"
FLOOD_KEY = f"::ffff:{FLOOD_SOURCE}"  # Its key in the IPv6 stick-table.
CLIENT_SOURCE = "127.0.0.2"
# The incident: 12,000 idle connections from one address filled maxconn.
IDLE_CONNECTIONS = 12_000
FLOOD_READY_WITHIN = 30.0  # seconds for every connection to have been tried once
CLIENT_RATE = 100  # requests per second of the watched client ...
CLIENT_SECONDS = 8  # ... for this long, every one on a new connection
P99_WITHIN = 0.050  # seconds
REQUEST_FLOOD_SECONDS = 5
REQUEST_FLOOD_CONNECTIONS = 50
RATE_SLACK = 1.2


def wait_for_line(path, prefix, timeout, process):
    """The JSON after `prefix` on the first line of the log that starts with it."""

    def line():
        for text in path.read_text().splitlines():
            if text.startswith(prefix + " "):
                return json.loads(text.split(" ", 1)[1])
        if process.exited():
            raise AssertionError(f"no {prefix} line from {process.argv} within {timeout} s:\n"
                                 + tail(path))
        return None

    return wait_until(line, timeout, 0.05, f"a {prefix} line",
                      holds=lambda found: found is not None,
                      error=lambda _: AssertionError(f"no {prefix} line from {process.argv} "
                                                     f"within {timeout} s:\n" + tail(path)))


def watched_client(stack, seconds=CLIENT_SECONDS):
    return load.PacedLoad(stack.url("/api/whoami"), rate=CLIENT_RATE, duration=seconds,
                          source=CLIENT_SOURCE, fresh_connections=True)


def summary(outcomes):
    failed = [o for o in outcomes if not o.ok]
    latencies = load.latencies(outcomes)
    return failed, load.percentile(latencies, 0.99), max(latencies)


def test_idle_connection_flood_leaves_new_clients_served(make_stack, tmp_path, report):
    stack = make_stack(instances=2)
    limit = stack.variables["tandem_lb_source_maxconn"]
    flood_seconds = CLIENT_SECONDS + 6
    log = tmp_path / "idle_flood.log"
    # The flood raises its own descriptor limit to 12,000 and some (it exits 77 if the hard limit
    # does not allow it), and reopens every connection HAProxy closes, until flood_seconds.
    flood = Process("idle-flood", [sys.executable, "-m", "tests.harness.idle_flood",
                                   "--port", str(stack.lb_port), "--source", FLOOD_SOURCE,
                                   "--count", str(IDLE_CONNECTIONS),
                                   "--seconds", str(flood_seconds)], log)
    try:
        try:
            ready = wait_for_line(log, "READY", FLOOD_READY_WITHIN, flood)
        except AssertionError:
            if "cannot raise the descriptor limit" in log.read_text():
                pytest.skip(f"this machine's descriptor limit is below {IDLE_CONNECTIONS}")
            raise
        with SourceSampler(stack.api, "public", FLOOD_KEY) as sampler:
            client = watched_client(stack)
            client.start()
            outcomes = client.join()
        done = wait_for_line(log, "DONE", flood_seconds + 10.0, flood)
    finally:
        flood.stop()

    failed, p99, slowest = summary(outcomes)
    refused = done["closed_by_server"] + sum(done["connect_errors"].values())
    report(f"idle flood from {FLOOD_SOURCE}: {IDLE_CONNECTIONS} connections tried in "
           f"{ready['seconds']:.2f} s, {done['attempts']} attempts in {done['seconds']:.0f} s "
           f"({refused} closed or reset by HAProxy); HAProxy held at most "
           f"{max(sampler.conn_cur, default=0)} of them (limit {limit}), public frontend at "
           f"most {max(sampler.frontend_cur, default=0)} connections")
    report(f"client on {CLIENT_SOURCE}, a new connection per request: {len(outcomes)} requests, "
           f"{len(failed)} failed, p99 {p99 * 1000:.1f} ms, slowest {slowest * 1000:.1f} ms")
    assert sampler.conn_cur, "no sample of HAProxy's table was taken"
    assert max(sampler.conn_cur) <= limit
    assert refused > IDLE_CONNECTIONS - limit
    assert len(outcomes) == CLIENT_RATE * CLIENT_SECONDS
    assert not failed, [(o.status, o.error) for o in failed[:5]]
    assert p99 < P99_WITHIN


def test_request_flood_gets_429_while_another_address_is_served(make_stack, report):
    stack = make_stack(instances=2)
    limit = stack.variables["tandem_lb_source_request_rate"]
    period = stack.variables["tandem_lb_source_rate_period"]
    client = watched_client(stack, REQUEST_FLOOD_SECONDS)
    client.start()
    flood = wrk_flood(stack.url(), "GET", "/api/whoami", requests=0,
                      seconds=REQUEST_FLOOD_SECONDS, connections=REQUEST_FLOOD_CONNECTIONS)
    outcomes = client.join()

    failed, p99, slowest = summary(outcomes)
    statuses = flood["statuses"]
    served, refused = statuses.get("200", 0), statuses.get("429", 0)
    report(f"request flood from {FLOOD_SOURCE} (wrk, {REQUEST_FLOOD_CONNECTIONS} connections, "
           f"{flood['seconds']:.1f} s): {flood['answers']} answers, {statuses}; every 429 with "
           f"Retry-After: {flood['retry_after_429'] == refused}, JSON: "
           f"{flood['json_429'] == refused} (limit {limit} per {period} s)")
    report(f"client on {CLIENT_SOURCE}: {len(outcomes)} requests, {len(failed)} failed, "
           f"p99 {p99 * 1000:.1f} ms, slowest {slowest * 1000:.1f} ms")
    assert set(statuses) <= {"200", "429"}, statuses
    # HAProxy's rate over a sliding period lets a little more through when the flood straddles
    # the end of a period (the last period's count is weighed down).
    assert limit * 0.9 <= served <= limit * RATE_SLACK
    assert refused > served
    assert flood["retry_after_429"] == refused and flood["json_429"] == refused
    assert not failed, [(o.status, o.error) for o in failed[:5]]
    assert p99 < P99_WITHIN


def idle_seconds(port, first_request):
    """Opens a connection, optionally sends one request and reads its answer, then waits without
    sending anything; returns how long after the last byte sent HAProxy closed it."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(30.0)
        if first_request:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: tandem\r\n\r\n")
            received = b""
            while b"}" not in received:
                received += sock.recv(4096)
        idle_from = time.monotonic()
        try:
            while sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        return time.monotonic() - idle_from


def test_new_idle_connection_is_closed_before_an_idle_keep_alive_one(make_stack, report):
    """HAProxy 2.6 gives a connection that has not sent its first request timeout http-request
    (counted from the accept), not timeout client nor http-keep-alive; a connection idle after an
    answer gets timeout http-keep-alive. The stack uses short, distinct values to tell them apart
    (timeout client stays at its 30 s)."""
    http_request, keep_alive = 1.0, 2.5
    stack = make_stack(instances=1, overrides={
        "tandem_lb_timeout_http_request": f"{int(http_request * 1000)}ms",
        "tandem_lb_timeout_http_keep_alive": f"{int(keep_alive * 1000)}ms"})
    new_idle = idle_seconds(stack.lb_port, first_request=False)
    kept_alive = idle_seconds(stack.lb_port, first_request=True)
    report(f"timeout http-request {http_request} s, http-keep-alive {keep_alive} s, client "
           f"{stack.variables['tandem_lb_timeout_client']}: a new connection that sends nothing "
           f"is closed after {new_idle:.2f} s, an idle keep-alive one after {kept_alive:.2f} s")
    assert http_request - 0.05 <= new_idle < http_request + 0.5
    assert keep_alive - 0.05 <= kept_alive < keep_alive + 0.5
