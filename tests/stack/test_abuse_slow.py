"""Slow clients from one address (Debian's slowhttptest) do not slow anyone else down: slow
headers (slowloris), a slow body (R-U-Dead-Yet) and a slow read, each from 127.0.0.1, while a
client on 127.0.0.2 sends CLIENT_RATE GET /api/whoami per second, each on a new connection. That
client must see no failure and a p99 under 50 ms, and HAProxy must keep both instances UP.

What holds them: the per-source connection limit (the attacker's 1,000 connections become 100),
timeout http-request (a head, and with option http-buffer-request a body, must arrive within 5 s;
HAProxy waits for it, never an instance), and timeout client for a client that stops reading.
"""

import csv
import re
import shutil
import time

import pytest

from tests.harness import load
from tests.harness.processes import Process, tail
from tests.harness.runtime_api import SourceSampler, StatusMonitor

ATTACK_SOURCE_KEY = "::ffff:127.0.0.1"  # slowhttptest connects from 127.0.0.1
CLIENT_SOURCE = "127.0.0.2"
# GET /api/whoami per second, each on a new connection: below the per-source connection rate
# (1,000 per 10 s), which would otherwise refuse this client itself ...
CLIENT_RATE = 80
CLIENT_SECONDS = 10  # ... for this long, once the attack has ramped up
RAMP_WITHIN = 5.0  # seconds for the attack to hold as many connections as HAProxy lets it
ATTACK_SECONDS = int(RAMP_WITHIN) + CLIENT_SECONDS + 2
# New connections per second, for the whole attack: below the per-source connection rate (1,000
# per 10 s), which would otherwise close most of them at once; this test is about what the slow
# ones it lets in can hold (tests/stack/test_abuse_tls.py floods past that rate). slowhttptest
# opens ...
ATTACK_RATE = 90
ATTACK_CONNECTIONS = ATTACK_RATE * ATTACK_SECONDS  # ... this many, and never reopens one
P99_WITHIN = 0.050

ATTACKS = {
    # Headers trickled: a new header line every second, never the blank line that ends them.
    "slow-headers": ["-H", "-i", "1", "-x", "24"],
    # A POST announcing 8 KiB of body, sent a few bytes a second.
    "slow-body": ["-B", "-i", "1", "-s", "8192", "-x", "24"],
    # Requests sent whole (three per connection), answers read 8 bytes a second through a receive
    # window of 1 to 16 bytes.
    "slow-read": ["-X", "-k", "3", "-n", "1", "-w", "1", "-y", "16", "-z", "8"],
}
PATHS = {"slow-headers": "/api/whoami", "slow-body": "/api/session", "slow-read": "/api/whoami"}


def slowhttptest_stats(csv_path):
    """Rows of slowhttptest's per-second statistics (-g -o), as dicts of ints (the "Service
    Available" column as 1/0)."""
    rows = []
    with open(csv_path, newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            rows.append({key.strip().lower(): (1 if value.strip() == "YES" else 0)
                         if key.strip().lower() == "service available" else int(value)
                         for key, value in row.items() if key and value is not None})
    return rows


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_slow_clients_do_not_slow_others(make_stack, tmp_path, report, attack):
    if shutil.which("slowhttptest") is None:
        pytest.fail("slowhttptest is not installed (packaging/install-deps.sh test)")
    stack = make_stack(instances=2)
    limit = stack.variables["tandem_lb_source_maxconn"]
    prefix = tmp_path / attack
    log = tmp_path / f"{attack}.log"
    argv = ["slowhttptest", *ATTACKS[attack], "-c", str(ATTACK_CONNECTIONS),
            "-r", str(ATTACK_RATE), "-l", str(ATTACK_SECONDS), "-p", "3",
            "-u", stack.url(PATHS[attack]), "-g", "-o", str(prefix)]
    monitors = [StatusMonitor(stack.api, stack.backend, server) for server in stack.instances]
    for monitor in monitors:
        monitor.__enter__()
    try:
        with SourceSampler(stack.api, "public", ATTACK_SOURCE_KEY) as sampler:
            attacker = Process(f"slowhttptest-{attack}", argv, log)
            try:
                # The client starts once the attack holds all it may hold.
                deadline = time.monotonic() + RAMP_WITHIN
                while max(sampler.conn_cur, default=0) < limit:
                    assert attacker.alive(), f"slowhttptest ended early:\n{tail(log)}"
                    assert time.monotonic() < deadline, (
                        f"the attack never reached {limit} connections: {sampler.conn_cur}")
                    time.sleep(0.05)
                client = load.PacedLoad(stack.url("/api/whoami"), rate=CLIENT_RATE,
                                        duration=CLIENT_SECONDS, source=CLIENT_SOURCE,
                                        fresh_connections=True)
                client_from = client.start()
                outcomes = client.join()
                client_until = time.monotonic()
                assert attacker.wait(ATTACK_SECONDS + 30.0), "slowhttptest did not end"
            finally:
                attacker.stop()
    finally:
        for monitor in monitors:
            monitor.__exit__(None, None, None)

    stats = slowhttptest_stats(f"{prefix}.csv")
    ended = re.search(r"Exit status:\s*([^\n]+)", re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "",
                                                             log.read_text()))
    failed = [o for o in outcomes if not o.ok]
    latencies = load.latencies(outcomes)
    p99 = load.percentile(latencies, 0.99)
    states = {m.server: sorted({status for _, status in m.changes}) for m in monitors}
    held = sorted(sampler.conn_cur_between(client_from, client_until))
    report(f"{attack} from 127.0.0.1 (slowhttptest, {ATTACK_CONNECTIONS} connections at "
           f"{ATTACK_RATE}/s for {ATTACK_SECONDS} s): it held at most "
           f"{max((r['connected'] for r in stats), default=0)} connected, "
           f"{max((r['closed'] for r in stats), default=0)} closed; HAProxy held at most "
           f"{max(sampler.conn_cur, default=0)} of its connections (limit {limit}), a median of "
           f"{held[len(held) // 2] if held else 0} while the client ran; its own probe "
           f"from the same address saw the service available in "
           f"{sum(r['service available'] for r in stats)} of {len(stats)} seconds; "
           f"{ended.group(1).strip() if ended else 'no exit status'}")
    report(f"{attack}: client on {CLIENT_SOURCE}, a new connection per request: {len(outcomes)} "
           f"requests, {len(failed)} failed, p99 {p99 * 1000:.1f} ms, slowest "
           f"{max(latencies) * 1000:.1f} ms; instance states seen {states}")
    assert stats, f"slowhttptest wrote no statistics:\n{tail(log)}"
    assert max(sampler.conn_cur) <= limit
    # The attack went on while the client was watched.
    assert held and held[len(held) // 2] >= limit // 2, held
    assert len(outcomes) == CLIENT_RATE * CLIENT_SECONDS
    assert not failed, [(o.status, o.error) for o in failed[:5]]
    assert p99 < P99_WITHIN
    assert all(seen == ["UP"] for seen in states.values()), states
