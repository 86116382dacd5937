"""A host that dies takes several instances at once. Every GET meant for them, by cookie or by
the balance, in flight at the loss or sent after it, must still be answered by the instances that
remain; four instances stand for two hosts of two.

A dead host either refuses (its processes are gone, its kernel still answers: SIGKILL) or says
nothing at all (it lost its power or its network: SIGSTOP stands in for its open connections, on
which nothing answers). The silent case sends quick routes only: a CPU-bound request waits
longer on purpose (tandem_lb_timeout_server_slow, haproxy/README.md, "A host lost")."""

import collections
import signal
import time

from tests.harness.load import PacedLoad, Request
from tests.harness.runtime_api import StatusMonitor, is_down

RATE = 200  # requests per second
KILL_AT = 2  # seconds into the load
LOST = ("app-1", "app-2")  # the two instances of the host that dies
# A CPU-bound request (~25 ms of CPU) in every four: the survivors are often busier than the dead
# instances, which then hold the fewest requests in flight, what leastconn prefers; and requests
# are in flight on the dead ones at the loss, queued on their workers.
SLOW = "/api/load-test?iterations=10000000"
# Every client here comes from 127.0.0.1, and those waiting on a silent instance hold their
# connections: the per-source connection limit (100) stands for one visitor, not for all of them.
ONE_SOURCE_FOR_ALL = {"tandem_lb_source_maxconn": 0}


def test_host_that_refuses(make_stack, report):
    stack = make_stack(instances=4)
    _, failures, down_after = _lose_host(stack, report, signal.SIGKILL, duration=8)
    # Marked DOWN by the first refused connection (observe layer4): sooner than its health checks
    # ever could, whose second failure comes at least fastinter (250 ms) after the first.
    assert down_after is not None and down_after < 0.25
    assert not failures


def test_host_that_falls_silent(make_stack, report):
    stack = make_stack(instances=4, overrides=ONE_SOURCE_FOR_ALL)
    # The balancer's patience with an instance that says nothing is below the clients'
    # (load.DEFAULT_TIMEOUT), so a GET stuck on a silent instance is sent to another and answered
    # in time.
    server_timeout = stack.variables["tandem_lb_timeout_server"]
    try:
        outcomes, failures, down_after = _lose_host(stack, report, signal.SIGSTOP,
                                                    duration=10, slow=False)
    finally:
        for instance in LOST:
            stack.stop_instance(instance, signal.SIGCONT)
    late = [o for o in outcomes if o.ok and o.finished - o.started > 1.0]
    report(f"  {len(late)} answered after more than 1 s (sent to a silent instance, then to "
           f"another after timeout server {server_timeout}), the slowest in "
           f"{max((o.finished - o.started for o in late), default=0):.2f} s")
    assert down_after is not None
    assert late, "no request was ever sent to a silent instance: the drill proves nothing"
    assert not failures


def _lose_host(stack, report, sig, duration, slow=True):
    """GETs at RATE for duration seconds: a quarter by cookie to each lost instance, a quarter
    cookieless, a quarter CPU-bound (slow) or cookieless too; at KILL_AT, sig to both lost
    instances. Returns the outcomes, the failed ones, and how long HAProxy took to mark the first
    lost instance DOWN."""
    cookie = stack.variables["tandem_lb_cookie_name"]

    def request_for(number):
        kind = number % 4
        if kind == 3 and slow:
            return Request("GET", stack.url(SLOW))
        if kind >= 2:
            return Request("GET", stack.url("/api/whoami"))
        return Request("GET", stack.url("/api/whoami"),
                       headers=(f"Cookie: {cookie}={LOST[kind]}",))

    load = PacedLoad(stack.url("/"), rate=RATE, duration=duration, request_for=request_for)
    with StatusMonitor(stack.api, stack.backend, LOST[0]) as monitor:
        t0 = load.start()
        time.sleep(max(0.0, t0 + KILL_AT - time.monotonic()))
        lost_at = time.monotonic()
        for instance in LOST:
            stack.stop_instance(instance, sig)
        outcomes = load.join()
    failures = [o for o in outcomes if not o.ok]
    down_at = monitor.first(is_down, lost_at)
    down_after = down_at - lost_at if down_at else None
    served = collections.Counter(o.instance for o in outcomes if o.ok and o.started > lost_at)
    report(f"{signal.Signals(sig).name} to {', '.join(LOST)}: {len(outcomes)} GET, "
           f"{len(failures)} failed; {LOST[0]} DOWN "
           f"{'never' if down_after is None else f'{down_after:.2f} s'} after; "
           f"answered after the loss by {dict(sorted(served.items()))}")
    for failure in failures[:8]:
        report(f"  failed: GET /{failure.request.url.split('/', 3)[-1]} "
               f"{' '.join(failure.request.headers)} sent at +{failure.started - lost_at:.3f} s, "
               f"ended +{failure.finished - lost_at:.3f} s: status {failure.status} "
               f"{failure.error or failure.body[:100]!r}")
    assert len(outcomes) == RATE * duration
    assert not any(served.get(instance) for instance in LOST)
    return outcomes, failures, down_after
