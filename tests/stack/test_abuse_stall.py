"""One client tries to stall the instances with CPU-bound work, while another address sends the
ordinary traffic of a busy site. What the other users must not notice: a failed request, a slow
one, an instance out of rotation, a restart.

The attacks: 20 /api/load-test?iterations=100000000 pipelined on one connection straight to app-1
(before the worker, this held app-1's loop past the 5 s watchdog); 12 of them at once through
HAProxy; and 12 at once through HAProxy aimed at app-1 with its stickiness cookie.

"Restarted" is judged as systemd would judge it: the instances run under a stand-in for systemd's
notify socket with WatchdogSec=5s (tests/harness/watchdog.py), and a gap of more than 5 s between
two watchdog pings is what would have cost a restart."""

import re
import threading
import time

from tests.harness import load, raw_http
from tests.harness.prober import Prober
from tests.harness.runtime_api import StatusMonitor

OTHER_CLIENT = "127.0.0.2"  # The ordinary users' address; the attacker uses 127.0.0.1.
RATE = 100  # ordinary GET /api/whoami per second
DURATION = 20  # seconds of ordinary traffic; the attacks run inside it
HEAVY = "/api/load-test?iterations=100000000"
PIPELINED = 20
PARALLEL = 12
P99_LIMIT = 0.050  # seconds: the ordinary traffic's p99 while under attack
HEALTH_LIMIT = 0.010  # seconds: a saturated instance's own /health


def test_cpu_work_cannot_stall_an_instance(make_stack, report):
    stack = make_stack(instances=2, watchdog=True)
    cookie = stack.variables["tandem_lb_cookie_name"]
    pids = {i.id: i.process.pid for i in stack.instances.values()}
    attack_results = {}

    def attack():
        started = time.monotonic()
        attack_results["pipelined to app-1"] = raw_http.pipelined(
            stack.instances["app-1"].port, HEAVY, PIPELINED)
        for name, headers in (("through HAProxy", ()),
                              ("through HAProxy, aimed at app-1", (f"Cookie: {cookie}=app-1",))):
            outcomes = load.parallel([load.Request("GET", stack.url(HEAVY), headers=headers)
                                      for _ in range(PARALLEL)], timeout=60)
            attack_results[name] = [o.status for o in outcomes]
            attack_results[name + " (instances)"] = sorted({o.instance for o in outcomes})
        attack_results["seconds"] = time.monotonic() - started

    monitors = [StatusMonitor(stack.api, stack.backend, server) for server in stack.instances]
    paced = load.PacedLoad(stack.url("/api/whoami"), RATE, DURATION, source=OTHER_CLIENT)
    health = Prober([i.url("/health") for i in stack.instances.values()], 0.1, DURATION - 1)
    with monitors[0], monitors[1]:
        health.start()
        paced.start()
        time.sleep(1.0)  # A second of the ordinary traffic alone, then the attacks.
        attacker = threading.Thread(target=attack, name="attacker")
        attacker.start()
        attacker.join(timeout=DURATION + 60)
        outcomes = paced.join()
    end = time.monotonic()

    failed = [o for o in outcomes if not o.ok]
    latencies = sorted(o.finished - o.started for o in outcomes)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    by_url = {i.url("/health"): i.id for i in stack.instances.values()}
    health_times = {i: sorted(s for url, code, s in health.samples()
                              if by_url[url] == i and code == 200) for i in stack.instances}
    health_failed = [s for s in health.samples() if s[1] != 200]
    # And as the instances saw it: the /health latency histogram's 10 ms bucket holds them all.
    within = {i.id: _health_within(i.url("/metrics"), HEALTH_LIMIT) for i in stack.instances.values()}
    statuses = {m.server: [status for _, status in m.changes] for m in monitors}
    gaps = {i.id: stack.watchdog.longest_gap(pids[i.id], until=end)
            for i in stack.instances.values()}
    report(f"attacks took {attack_results.get('seconds', -1):.1f} s: "
           + "; ".join(f"{name}: {value}" for name, value in attack_results.items()
                       if name != "seconds"))
    report(f"ordinary traffic from {OTHER_CLIENT}: {len(outcomes)} GET, {len(failed)} failed, "
           f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
           f"max {latencies[-1] * 1000:.1f} ms")
    report("own /health while saturated: " + ", ".join(
        f"{i} {len(t)} answers, p99 {t[int(len(t) * 0.99) - 1] * 1000:.2f} ms, max "
        f"{t[-1] * 1000:.2f} ms" for i, t in health_times.items())
        + f"; answered within {HEALTH_LIMIT * 1000:.0f} ms by the instances' own count "
        + str(within)
        + f"; HAProxy statuses {statuses}; longest watchdog gap "
        + ", ".join(f"{i} {g:.2f} s" for i, g in gaps.items()))

    assert not attacker.is_alive(), "the attacks did not end"
    assert attack_results["seconds"] < DURATION - 1, "the attacks outlasted the ordinary traffic"
    # The attacks were real: the heavy requests were computed (or refused when the worker was
    # full), and the aimed ones all reached app-1.
    assert attack_results["pipelined to app-1"].count(200) >= 1
    assert set(attack_results["pipelined to app-1"]) <= {200, 503}
    assert attack_results["through HAProxy, aimed at app-1 (instances)"] == ["app-1"]
    assert len(outcomes) == RATE * DURATION
    assert not failed, f"{len(failed)} ordinary requests failed, first: {failed[0]}"
    assert p99 < P99_LIMIT, f"ordinary p99 {p99 * 1000:.1f} ms"
    assert not health_failed, health_failed[:5]
    for instance_id, times in health_times.items():
        assert len(times) >= 5 * DURATION, f"{instance_id}: {len(times)} /health samples"
        p99_health = times[int(len(times) * 0.99) - 1]
        assert p99_health < HEALTH_LIMIT, f"{instance_id}: /health p99 {p99_health * 1000:.2f} ms"
        assert within[instance_id][0] == within[instance_id][1], (instance_id, within)
    assert all(changes == ["UP"] for changes in statuses.values()), statuses
    for instance in stack.instances.values():
        assert instance.process is not None and instance.process.pid == pids[instance.id]
        assert not stack.watchdog.would_have_restarted(pids[instance.id], until=end), (
            f"{instance.id}: {gaps[instance.id]:.2f} s without a watchdog ping")


def _health_within(metrics_url, limit):
    """(answers within `limit`, all answers) of /health by the instance's latency histogram."""
    text = load.parallel([load.Request("GET", metrics_url)])[0].body.decode()
    bucket = re.search(r'tandem_http_request_duration_seconds_bucket\{route="/health",le="'
                       + f"{limit:.6f}".rstrip("0") + r'"\} (\d+)', text)
    count = re.search(r'tandem_http_request_duration_seconds_count\{route="/health"\} (\d+)', text)
    return int(bucket.group(1)), int(count.group(1))
