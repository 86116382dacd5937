"""One client tries to fill the instances' memory through the session route, while another address
sends ordinary traffic: 400 POST /api/session with a 1 MB clientId through HAProxy (before the
limits, each made a session holding it: 8.8 MB to 416 MB in 3 s). What the other users must not
notice: a failed request, or an instance that grows until the kernel kills it. (The store's own
byte bound, for sessions within the route's limits, is shown by the memory store's unit tests.)"""

import json

from tests.harness import load, procstat

OTHER_CLIENT = "127.0.0.2"
RATE = 100
BIG_POSTS = 400
BATCH = 20  # big POSTs at once
MAX_GROWTH = 16 * 1024 * 1024  # bytes of resident memory an instance may grow by


def test_big_session_bodies_are_refused_and_memory_stays_bounded(make_stack, report):
    stack = make_stack(instances=2)
    pids = {i.id: i.process.pid for i in stack.instances.values()}
    before = {instance_id: procstat.rss_bytes(pid) for instance_id, pid in pids.items()}
    body = json.dumps({"clientId": "x" * 1_000_000, "requestNum": 1}).encode()
    url = stack.url("/api/session")
    big = [load.Request("POST", url, body, ("Content-Type: application/json",))]

    paced = load.PacedLoad(stack.url("/api/whoami"), RATE, 15, source=OTHER_CLIENT)
    paced.start()
    answers = []
    for _ in range(BIG_POSTS // BATCH):
        answers += load.parallel(big * BATCH, timeout=30)
    outcomes = paced.join()
    after = {instance_id: procstat.rss_bytes(pid) for instance_id, pid in pids.items()}

    statuses = sorted({a.status for a in answers})
    answered = [a for a in answers if a.status]
    cut = [a for a in answers if not a.status]
    failed = [o for o in outcomes if not o.ok]
    growth = {i: after[i] - before[i] for i in pids}
    report(f"{len(answers)} POST with a 1 MB clientId: {len(answered)} answered "
           f"{sorted({a.status for a in answered})}, {len(cut)} cut before the answer arrived "
           f"({sorted({a.error[:40] for a in cut})}); resident memory "
           + ", ".join(f"{i} {before[i] / 2**20:.1f} -> {after[i] / 2**20:.1f} MiB" for i in pids)
           + f"; ordinary traffic {len(outcomes)} GET, {len(failed)} failed")

    assert len(answers) == BIG_POSTS
    # Refused every time: 413 by the instance from the Content-Length alone, or 429 by the
    # balancer's per-client limits, with a JSON error; or, when the connection closed while the
    # client was still sending the megabyte the answer had already refused, no answer at all
    # (the kernel resets a connection closed with unread data). Never served.
    assert set(statuses) <= {0, 413, 429}, statuses
    assert answered, "no answer came through at all"
    for answer in answered:
        assert answer.headers.get("content-type") == "application/json", answer
        assert "error" in answer.json()
    assert all(g < MAX_GROWTH for g in growth.values()), growth
    assert not failed, f"{len(failed)} ordinary requests failed, first: {failed[0]}"
    for instance in stack.instances.values():
        assert instance.process.pid == pids[instance.id], f"{instance.id} was restarted"
