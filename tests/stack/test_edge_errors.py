"""Every answer HAProxy makes by itself is JSON, like tandem's: each status it can produce is
provoked for real and must come back as Content-Type application/json with a body
{"error": "<what to do>"}, and with Retry-After on 429 and 503 (haproxy/errorfile.http.j2).

What HAProxy 2.6 cannot do: the errors its HTTP/1 multiplexer finds before a request becomes a
stream (an unparsable request line or header: 400; a head not whole in time: 408; a body on an
HTTP/1.0 GET: 413) are sent from HAProxy's compiled-in HTML, whatever the configuration says
(haproxy.cfg.j2 explains it). Those cases check the status and that HAProxy answered, and are
reported as expected failures (xfail) for the JSON part; from HAProxy 3.3 on they pass. The same
statuses found once the stream exists (a malformed chunk in a body: 400; a body too slow: 408) are
JSON and tested as such. Not provoked: 500 (HAProxy's own internal failures: an allocation, or a
header rewrite that does not fit, which the buffer's rewrite reserve prevents for the few headers
this configuration adds), 422 (HAProxy 2.6.12 answers an unknown Transfer-Encoding with 400, from
the multiplexer), and 404, 405, 410, 421, 425, 501, which no rule or feature of this configuration
produces; their errorfiles are checked by tests/stack/test_config.py.

The 502 and 504 come from a small raw-socket server in this process, an extra backend server that
answers HAProxy's health checks and misbehaves on any other path; a request reaches it through
the stickiness cookie, which names it.
"""

import json
import signal
import socket
import socketserver
import threading
import time

import pytest

from tests.harness import load
from tests.harness.runtime_api import is_down
from tests.harness.stack import LOOPBACK

MUX_LIMITATION = ("HAProxy 2.6's HTTP/1 multiplexer answers errors found before a stream exists "
                  "from its compiled-in HTML, ignoring errorfiles (fixed in HAProxy 3.3)")
# Short timeouts, so that the 408 and 504 come within a second.
HTTP_REQUEST_TIMEOUT = "1s"
SERVER_TIMEOUT = "1s"
# A request rate low enough to pass in a few requests, for the 429.
LOW_REQUEST_RATE = 5
# Each per-source limit is checked from its own address, so that the other checks' requests do not
# count against it.
RATE_SOURCE = "127.0.0.3"
EXCHANGE_TIMEOUT = 10.0


class Answer:
    """An HTTP answer read off a raw socket."""

    def __init__(self, raw, elapsed):
        self.raw = raw
        self.elapsed = elapsed
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        parts = self.status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        length = self.headers.get("content-length")
        if length is not None and length.isdigit():
            self.body = self.body[:int(length)]

    def __repr__(self):
        return f"<Answer {self.raw[:300]!r}>"


def exchange(port, chunks, pause=0.0, source=None):
    """Sends chunks on a new connection (pause seconds apart), then reads until the server
    closes or the first answer is whole; returns the first Answer."""
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if source:
            sock.bind((source, 0))
        sock.settimeout(EXCHANGE_TIMEOUT)
        sock.connect((LOOPBACK, port))
        for number, chunk in enumerate(chunks):
            if number and pause:
                time.sleep(pause)
            sock.sendall(chunk)
        received = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                if _whole(received):
                    break
        except ConnectionResetError:
            pass
    return Answer(received, time.monotonic() - start)


def _whole(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value.strip())
    return False


def from_outcome(outcome):
    """An Answer-like view of a load.Outcome (pycurl), for the same checks."""
    answer = Answer(b"", outcome.finished - outcome.started)
    answer.status = outcome.status
    answer.status_line = f"HTTP/1.1 {outcome.status}"
    answer.headers = dict(outcome.headers)
    answer.body = outcome.body
    return answer


def json_error_problems(answer, status):
    """What makes answer not HAProxy's JSON error of this status (empty: nothing)."""
    problems = []
    if answer.status != status:
        return [f"status {answer.status}, not {status}: {answer!r}"]
    if "x-container-id" in answer.headers:
        problems.append("answered by an instance, not by HAProxy")
    if answer.headers.get("content-type") != "application/json":
        problems.append(f"Content-Type {answer.headers.get('content-type')!r}")
    try:
        document = json.loads(answer.body)
        if not (isinstance(document, dict) and isinstance(document.get("error"), str)
                and document["error"]):
            problems.append(f"body is not {{\"error\": ...}}: {answer.body[:200]!r}")
    except ValueError:
        problems.append(f"body is not JSON: {answer.body[:200]!r}")
    if status in (429, 503):
        retry_after = answer.headers.get("retry-after", "")
        if not (retry_after.isdigit() and int(retry_after) > 0):
            problems.append(f"Retry-After {retry_after!r}")
    return problems


def check(report, name, answer, status):
    problems = json_error_problems(answer, status)
    report(f"{name}: {answer.status_line!r}, Content-Type {answer.headers.get('content-type')}, "
           f"Retry-After {answer.headers.get('retry-after', '-')}, after {answer.elapsed:.2f} s, "
           f"body {answer.body[:120]!r}")
    assert not problems, f"{name}: {problems}"


def check_mux_error(report, name, answer, status):
    """A multiplexer-level error: the status must be right and come from HAProxy; JSON is
    expected from HAProxy 3.3 on (an expected failure before)."""
    report(f"{name}: {answer.status_line!r}, Content-Type {answer.headers.get('content-type')}, "
           f"after {answer.elapsed:.2f} s")
    assert answer.status == status, answer
    assert "x-container-id" not in answer.headers, answer
    problems = json_error_problems(answer, status)
    if problems:
        pytest.xfail(f"{MUX_LIMITATION}: {problems}")


@pytest.fixture
def stack(make_stack):
    return make_stack(instances=2, overrides={
        "tandem_lb_timeout_http_request": HTTP_REQUEST_TIMEOUT,
        "tandem_lb_source_request_rate": LOW_REQUEST_RATE})


# --- 400 ---------------------------------------------------------------------------------------


def test_400_malformed_body(stack, report):
    """A chunked body whose chunk size is not a number, sent after the head: the stream exists,
    so HAProxy answers from its errorfile."""
    answer = exchange(stack.lb_port, [
        b"POST /api/session HTTP/1.1\r\nHost: tandem\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"zz\r\n{}\r\n0\r\n\r\n"], pause=0.3)
    check(report, "400 malformed chunk", answer, 400)


def test_400_malformed_head(stack, report):
    answer = exchange(stack.lb_port, [b"GET /api/whoami HTTP/1.1\r\nHost: tandem\r\n"
                                      b"a header without a colon\r\n\r\n"])
    check_mux_error(report, "400 malformed head", answer, 400)


# --- 403 ---------------------------------------------------------------------------------------


def test_403_blocked_path(stack, report):
    answer = from_outcome(load.parallel([load.Request("GET", stack.url("/metrics"))])[0])
    check(report, "403 blocked path", answer, 403)


# --- 408 ---------------------------------------------------------------------------------------


def test_408_slow_body(stack, report):
    """The head arrives, the body never ends: HAProxy (option http-buffer-request) waits for it
    timeout http-request long, never an instance, then answers 408 from its errorfile."""
    answer = exchange(stack.lb_port, [
        b"POST /api/session HTTP/1.1\r\nHost: tandem\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n", b'{"clientId":'], pause=0.2)
    check(report, "408 slow body", answer, 408)


def test_408_slow_head(stack, report):
    answer = exchange(stack.lb_port, [b"GET /api/whoami HTTP/1.1\r\nHost: tandem\r\n"])
    check_mux_error(report, "408 slow head", answer, 408)


# --- 413 ---------------------------------------------------------------------------------------


def test_413_body_on_http10_get(stack, report):
    """The one 413 HAProxy 2.6 makes by itself: a body on an HTTP/1.0 GET, HEAD or DELETE.
    Bodies too large for tandem are refused by the instances (--max-body-bytes, 413 JSON)."""
    answer = exchange(stack.lb_port, [b"GET /api/whoami HTTP/1.0\r\nHost: tandem\r\n"
                                      b"Content-Length: 2\r\n\r\n{}"])
    check_mux_error(report, "413 body on HTTP/1.0 GET", answer, 413)


# --- 429 ---------------------------------------------------------------------------------------


def test_429_over_the_request_rate(stack, report):
    url = stack.url("/api/whoami")
    client = load.Client(cookies=False, source=RATE_SOURCE)
    try:
        load.run_clients([client], lambda c, n: load.Request("GET", url), LOW_REQUEST_RATE * 3)
    finally:
        client.close()
    statuses = [o.status for o in client.outcomes]
    report(f"{len(statuses)} requests from {RATE_SOURCE} with a limit of {LOW_REQUEST_RATE}: "
           f"{statuses}")
    assert statuses[:LOW_REQUEST_RATE] == [200] * LOW_REQUEST_RATE
    answer = from_outcome(client.outcomes[-1])
    check(report, "429 over the request rate", answer, 429)
    assert answer.headers["retry-after"] == str(stack.variables["tandem_lb_source_rate_period"])


# --- 502, 504: an instance that misbehaves -----------------------------------------------------


class MisbehavingHandler(socketserver.BaseRequestHandler):
    """Answers GET /health with 200 (so HAProxy keeps the server UP); on any other path, by the
    server's mode: "garbage" (a line that is not HTTP, then close), "close" (close without a
    word), "silent" (say nothing, hold the connection until the server stops)."""

    def handle(self):
        sock = self.request
        sock.settimeout(EXCHANGE_TIMEOUT)
        buffered = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffered:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buffered += chunk
                head, _, buffered = buffered.partition(b"\r\n\r\n")
                path = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b""
                if path == b"/health":
                    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2\r\n\r\n{}")
                    continue
                self.server.requests += 1
                mode = self.server.mode
                if mode == "garbage":
                    sock.sendall(b"this is not HTTP\r\n\r\n")
                elif mode == "silent":
                    self.server.stopping.wait(EXCHANGE_TIMEOUT)
                return
        except OSError:
            return


class MisbehavingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode):
        super().__init__((LOOPBACK, 0), MisbehavingHandler)
        self.mode = mode
        self.requests = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self):
        return self.server_address[1]

    def handle_error(self, request, client_address):
        pass


@pytest.fixture
def misbehaving():
    """misbehaving(mode) starts a MisbehavingServer; all are stopped at the end."""
    servers = []

    def start(mode):
        server = MisbehavingServer(mode)
        server.thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.thread.join()


def through(stack, server_id, method, path="/api/whoami"):
    """One request that the stickiness cookie sends to server_id."""
    cookie = f"Cookie: {stack.variables['tandem_lb_cookie_name']}={server_id}"
    body = b"{}" if method == "POST" else None
    outcome = load.parallel([load.Request(method, stack.url(path), body, (cookie,))])[0]
    return from_outcome(outcome)


@pytest.mark.parametrize("mode,method", [("garbage", "GET"), ("close", "POST")],
                         ids=["answers-garbage", "closes-without-answer"])
def test_502_instance_answers_badly(make_stack, misbehaving, report, mode, method):
    server = misbehaving(mode)
    stack = make_stack(instances=0, extra_servers=[{"id": "bad", "host": LOOPBACK,
                                                    "port": server.port}])
    answer = through(stack, "bad", method)
    check(report, f"502 instance that {mode}s ({method})", answer, 502)
    assert server.requests >= 1


def test_504_instance_does_not_answer_in_time(make_stack, misbehaving, report):
    """POST, which HAProxy never sends twice: one timeout server, then 504."""
    server = misbehaving("silent")
    stack = make_stack(instances=0, extra_servers=[{"id": "mute", "host": LOOPBACK,
                                                    "port": server.port}],
                       overrides={"tandem_lb_timeout_server": SERVER_TIMEOUT})
    answer = through(stack, "mute", "POST", "/api/session")
    check(report, f"504 instance silent past timeout server {SERVER_TIMEOUT}", answer, 504)
    assert answer.elapsed >= 0.9


# --- 503 ---------------------------------------------------------------------------------------


def test_503_every_instance_down(stack, report):
    for instance_id in stack.instances:
        stack.stop_instance(instance_id, signal.SIGKILL)
    for instance_id in stack.instances:
        stack.wait_status(instance_id, is_down, timeout=10.0)
    answer = from_outcome(load.parallel([load.Request("GET", stack.url("/api/whoami"))])[0])
    check(report, "503 every instance down", answer, 503)
    assert answer.headers["retry-after"] == str(
        stack.variables["tandem_lb_unavailable_retry_after"])
