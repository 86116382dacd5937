"""What reaches an instance through HAProxy: X-Forwarded-For and X-Request-ID, the latter also
in HAProxy's log line and the answer; and the stickiness cookie's attributes.

The backend here is a small echo server in this process (it answers /health, and any other path
with the request headers it received as JSON): tandem-server does not echo headers."""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.harness import load
from tests.harness.stack import LOOPBACK
from tests.harness.waiting import wait_until


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        body = json.dumps(headers).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Container-Id", "echo")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # HAProxy closing idle connections at the end is not an error.


@pytest.fixture
def echo_server():
    server = QuietServer((LOOPBACK, 0), EchoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def test_forwarded_headers_and_request_id(make_stack, echo_server, report):
    # Every request logged, so that this good one has a line (by default only errors do:
    # tests/stack/test_request_logs.py).
    stack = make_stack(instances=0, overrides={"tandem_lb_log_requests": "all"},
                       extra_servers=[{"id": "echo", "host": LOOPBACK, "port": echo_server}])
    # A client's own claims are replaced, not passed on.
    answer = load.parallel([load.Request("GET", stack.url("/anything"), headers=(
        "X-Forwarded-For: 203.0.113.9", "X-Request-ID: chosen-by-client"))])[0]
    assert answer.ok, answer
    seen = answer.json()
    request_id = answer.headers.get("x-request-id", "")
    report(f"instance saw X-Forwarded-For {seen.get('x-forwarded-for')}, "
           f"X-Request-ID {seen.get('x-request-id')}; client got X-Request-ID {request_id}")
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-request-id"] == [request_id]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                        request_id)
    # HAProxy's log line for that request carries the same id.
    lines = wait_until(lambda: [line for line in stack.haproxy_log.read_text().splitlines()
                                if request_id in line], 5.0, 0.05, "the request id in the log",
                       error=lambda _: AssertionError("the request id is not in HAProxy's log"))
    assert '"GET /anything HTTP/1.1"' in lines[0] and "tandem/echo" in lines[0]


def test_stickiness_cookie_attributes(make_stack, echo_server):
    stack = make_stack(instances=0,
                       extra_servers=[{"id": "echo", "host": LOOPBACK, "port": echo_server}])
    cookie = stack.variables["tandem_lb_cookie_name"]
    first = load.Client()
    try:
        load.run_clients([first], lambda c, n: load.Request("GET", stack.url("/a")), 2)
        set_cookie = first.outcomes[0].headers.get("set-cookie", "")
        assert set_cookie.startswith(f"{cookie}=echo;") and "HttpOnly" in set_cookie
        # indirect: HAProxy neither re-sends the cookie nor passes it on to the instance.
        assert "set-cookie" not in first.outcomes[1].headers
        assert "cookie" not in first.outcomes[1].json()
    finally:
        first.close()
