"""Which requests the logs record, HAProxy's and the instances' (haproxy/README.md, "Request
logs"): by default only those that went wrong, each by both with one request id, and every request
with the variables an operator sets to follow them all.

- defaults: 200 ordinary requests leave no request line in either log (they are counted in the
  metrics); a 503 HAProxy answers itself, and a request that had to be redispatched off a dead
  instance, are in HAProxy's log; a request slower than --slow-request is in the instance's;
- defaults: HAProxy's own refusals (403 on a blocked path, 429 over a per-source limit) leave no
  line, so that a flood does not buy a journal line with every request;
- tandem_lb_log_requests: all with --access-log all: every request is in both logs, joined by
  the X-Request-ID the client got back.
"""

import json
import signal
import urllib.error
import urllib.request

from tests.harness import load
from tests.harness.stack import ONE_ADDRESS_CROWD
from tests.harness.waiting import wait_until

ORDINARY = 200


def haproxy_request_lines(stack):
    """HAProxy's request log lines (its log also holds start-up and health-check lines)."""
    text = stack.haproxy_log.read_text(errors="replace")
    return [line for line in text.splitlines() if '"GET ' in line or '"POST ' in line]


def instance_request_lines(stack):
    lines = []
    for instance in stack.instances.values():
        for line in instance.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                # HAProxy's health checks are answers too, with no request id.
                if entry.get("event") == "request" and entry.get("target") != "/health":
                    lines.append(entry)
    return lines


def get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers
    except urllib.error.HTTPError as error:
        return error.code, error.headers


def test_by_default_only_what_went_wrong_is_logged(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD,
                       server_args=["--slow-request", "20ms"])
    outcomes = load.parallel([load.Request("GET", stack.url("/api/whoami"))] * ORDINARY)
    assert all(o.ok for o in outcomes)
    # A 200 slower than --slow-request: the instance logs it, HAProxy (nothing wrong) does not.
    status, headers = get(stack.url("/api/load-test?iterations=100000000"))
    assert status == 200
    slow_id = headers["X-Request-ID"]
    wait_until(lambda: any(e["request_id"] == slow_id for e in instance_request_lines(stack)),
               timeout=5, what="the slow request in the instance's log")
    quiet_haproxy, quiet_instances = haproxy_request_lines(stack), instance_request_lines(stack)
    assert quiet_haproxy == []
    assert [e["request_id"] for e in quiet_instances] == [slow_id]

    # A request on a dead instance's cookie, redispatched to the other: logged by HAProxy.
    stack.stop_instance("app-1", signal.SIGKILL)
    stack.wait_instance_exit("app-1", 5)
    status, headers = get(stack.url("/api/whoami"), {"Cookie": "tandem_instance=app-1"})
    assert status == 200 and headers["X-Container-Id"] == "app-2"
    redispatched_id = headers["X-Request-ID"]
    # HAProxy's own 503: no instance left in rotation.
    for instance_id in ("app-1", "app-2"):
        stack.api.set_server_state(stack.backend, instance_id, "maint")
    status, headers = get(stack.url("/api/whoami"))
    assert status == 503
    unavailable_id = headers["X-Request-ID"]
    lines = wait_until(lambda: haproxy_request_lines(stack), timeout=5,
                       what="two lines in HAProxy's log", holds=lambda found: len(found) == 2)
    report(f"defaults: {ORDINARY} ordinary requests -> 0 lines in HAProxy's log, 0 in the "
           f"instances'; a slow 200 -> the instance's line only; a redispatch and a 503 -> "
           f"HAProxy's: {lines}")
    assert redispatched_id in lines[0] and unavailable_id in lines[1]
    assert " 503 " in lines[1]
    stack.api.set_server_state(stack.backend, "app-2", "ready")


def test_every_request_when_asked(make_stack, report):
    stack = make_stack(instances=2,
                       overrides={**ONE_ADDRESS_CROWD, "tandem_lb_log_requests": "all"},
                       server_args=["--access-log", "all"])
    ids = []
    for _ in range(20):
        status, headers = get(stack.url("/api/whoami"))
        assert status == 200
        ids.append(headers["X-Request-ID"])
    haproxy = wait_until(lambda: haproxy_request_lines(stack), timeout=5,
                         what="20 lines in HAProxy's log", holds=lambda found: len(found) >= 20)
    instances = instance_request_lines(stack)
    report(f"all: 20 requests -> {len(haproxy)} lines in HAProxy's log, {len(instances)} in the "
           f"instances'")
    assert [line.rsplit(" ", 1)[1] for line in haproxy] == ids
    assert sorted(e["request_id"] for e in instances) == sorted(ids)


def test_refusals_are_not_logged_by_default(make_stack, report):
    stack = make_stack(instances=1, overrides={"tandem_lb_source_request_rate": 10,
                                               "tandem_lb_source_session_rate": 3})
    statuses = [get(stack.url("/metrics"))[0] for _ in range(5)]
    statuses += [get(stack.url("/api/whoami"))[0] for _ in range(30)]
    assert statuses[:5] == [403] * 5 and statuses[-10:] == [429] * 10, statuses
    # New sessions from another address, one at a time, each a new cookieless client: over the
    # session rate they are refused (ten requests stay within its request rate).
    body = json.dumps({"clientId": "flood", "requestNum": 1}).encode()
    sessions = [load.parallel([load.Request("POST", stack.url("/api/session"), body,
                                            ("Content-Type: application/json",))],
                              source="127.0.0.3")[0].status for _ in range(10)]
    assert sessions[0] == 200 and sessions[-4:] == [429] * 4, sessions
    statuses += sessions
    # A request that went wrong after them, from another address (127.0.0.1 is over its limit):
    # HAProxy's own 503. Its line is the first and only one: the refusals left none.
    stack.api.set_server_state(stack.backend, "app-1", "maint")
    unavailable = load.parallel([load.Request("GET", stack.url("/api/whoami"))],
                                source="127.0.0.2")[0]
    assert unavailable.status == 503, unavailable
    unavailable_id = unavailable.headers["x-request-id"]
    lines = wait_until(lambda: haproxy_request_lines(stack) or None, timeout=5,
                       what="a line in HAProxy's log")
    stack.api.set_server_state(stack.backend, "app-1", "ready")
    report(f"defaults: {statuses.count(403)} answers 403 and {statuses.count(429)} answers 429, "
           f"then a 503 -> HAProxy's log: {lines}")
    assert len(lines) == 1 and unavailable_id in lines[0] and " 503 " in lines[0], lines
