"""Scenario 5: what the public frontend refuses, cuts, or answers by itself; and the admin
surfaces, which only the host reaches."""

import os
import select
import signal
import socket
import stat
import time

from tests.harness import load
from tests.harness.runtime_api import is_down

TRICKLE_INTERVAL = 0.5  # seconds between two bytes of the slow client's headers
TRICKLE_BYTES = 120  # a header section that would take a minute to arrive


def get(url, headers=()):
    return load.parallel([load.Request("GET", url, headers=tuple(headers))])[0]


def test_metrics_are_refused_on_the_public_frontend(make_stack, report):
    stack = make_stack(instances=2)
    paths = ["/metrics", "/api/metrics", "/metrics?format=prometheus", "/api/metrics?x=1"]
    answers = {path: get(stack.url(path)) for path in paths}
    report("public frontend: " + ", ".join(f"{p} -> {a.status}" for p, a in answers.items()))
    for path, answer in answers.items():
        assert answer.status == 403, path
        assert answer.instance == "", f"{path} reached {answer.instance}"
        assert answer.headers.get("content-type") == "application/json"
    # The same data stays available where it belongs: on the instances themselves.
    assert get(stack.instances["app-1"].url("/metrics")).status == 200


def test_admin_surfaces_are_on_the_host_listener(make_stack):
    stack = make_stack(instances=2)
    stats = get(stack.stats_url(stack.variables["tandem_lb_stats_uri"]))
    assert stats.status == 200 and b"app-1" in stats.body
    metrics = get(stack.stats_url("/metrics"))
    assert metrics.status == 200
    assert b"haproxy_server_" in metrics.body and b'server="app-2"' in metrics.body
    assert stat.S_IMODE(os.stat(stack.admin_socket).st_mode) == 0o660
    assert stack.variables["tandem_lb_stats_bind"].startswith("127.0.0.1:")


def test_slowloris_is_cut_by_haproxy(make_stack, report):
    stack = make_stack(instances=2)
    limit = stack.variables["tandem_lb_timeout_http_request"]
    start = time.monotonic()
    received = b""
    sent = 0
    with socket.create_connection(("127.0.0.1", stack.lb_port)) as sock:
        sock.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: tandem\r\n")
        trickle = b"X-Slow: " + b"a" * TRICKLE_BYTES
        closed = False
        while sent < len(trickle) and not closed:
            readable, _, _ = select.select([sock], [], [], TRICKLE_INTERVAL)
            if readable:
                chunk = sock.recv(4096)
                received += chunk
                closed = not chunk
                continue
            try:
                sock.send(trickle[sent:sent + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                closed = True
        # HAProxy answers 408 and closes; read to the end.
        sock.settimeout(5.0)
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    elapsed = time.monotonic() - start
    head = received.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    report(f"slowloris: cut after {elapsed:.2f} s ({sent} of {len(trickle)} trickled bytes "
           f"sent; timeout http-request {limit}); answer {head.splitlines()[:1]}")
    assert sent < len(trickle), "the slow client was never cut"
    assert head.startswith("HTTP/1.1 408"), received
    # HAProxy cut it, not the instance (which would have said who it is).
    assert "x-container-id" not in head.lower()


def test_haproxy_health_answers_with_every_instance_down(make_stack, report):
    stack = make_stack(instances=2)
    for instance_id in stack.instances:
        stack.stop_instance(instance_id, signal.SIGKILL)
    for instance_id in stack.instances:
        stack.wait_status(instance_id, is_down, timeout=10.0)
    health = get(stack.url("/health"))
    app = get(stack.url("/api/whoami"))
    report(f"every instance down: /health -> {health.status} {health.body.decode()}; "
           f"/api/whoami -> {app.status} {app.body.decode()}")
    assert health.status == 200
    assert health.json()["instances_up"] == 0
    assert app.status == 503 and "error" in app.json()
