"""Scenario 4: drain and maint on the runtime API, and both surviving a reload."""

import json

from tests.harness import load
from tests.harness.stack import ONE_ADDRESS_CROWD

NEW_CLIENTS = 100
STICKY_CLIENTS = 10
# Spec (scenario 1): a split is 50 % +- 5 % per instance.
SHARE = 0.50
SHARE_TOLERANCE = 0.05


def new_clients(stack, count=NEW_CLIENTS):
    """count cookieless requests at once; {instance: answers}, failures under None."""
    outcomes = load.parallel([load.Request("GET", stack.url("/api/whoami"))] * count)
    spread = {}
    for outcome in outcomes:
        key = outcome.instance if outcome.ok else None
        spread[key] = spread.get(key, 0) + 1
    return spread


def new_clients_in_turn(stack, count=NEW_CLIENTS):
    """count cookieless requests one after another; {instance: answers}, failures under None.
    One at a time, leastconn finds both instances idle each time and takes them in turn; a burst
    right after `ready` would instead follow which instance answers faster, and the one coming
    back has fewer warm server connections than the one that carried the drain."""
    spread = {}
    for _ in range(count):
        outcome = load.parallel([load.Request("GET", stack.url("/api/whoami"))])[0]
        key = outcome.instance if outcome.ok else None
        spread[key] = spread.get(key, 0) + 1
    return spread


def round_of(clients, url):
    """One POST /api/session from every client, all at once; the round's outcomes."""
    def make(client, _):
        body = json.dumps({"clientId": client.name, "requestNum": len(client.outcomes) + 1})
        return load.Request("POST", url, body.encode(), ("Content-Type: application/json",))

    load.run_clients(clients, make, 1)
    return [client.outcomes[-1] for client in clients]


def sticky_clients_on(stack, instance_id, count):
    """Clients with a cookie jar whose stickiness cookie names instance_id."""
    url = stack.url("/api/session")
    kept, others = [], []
    while len(kept) < count:
        client = load.Client(name=f"sticky-{len(kept) + len(others)}")
        outcome = round_of([client], url)[0]
        assert outcome.ok, outcome
        (kept if outcome.instance == instance_id else others).append(client)
    for client in others:
        client.close()
    return kept


def test_drain_ready_and_maint(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    api, backend = stack.api, stack.backend
    url = stack.url("/api/session")
    sticky = sticky_clients_on(stack, "app-1", STICKY_CLIENTS)
    try:
        api.set_server_state(backend, "app-1", "drain")
        assert api.server_status(backend, "app-1") == "DRAIN"
        drained = new_clients(stack)
        answers = round_of(sticky, url)
        report(f"drain: {NEW_CLIENTS} new clients -> {drained}; {len(sticky)} app-1 sticky "
               f"clients -> {[a.instance for a in answers].count('app-1')} on app-1")
        assert drained == {"app-2": NEW_CLIENTS}
        assert all(a.ok and a.instance == "app-1" for a in answers), answers
        # Their session lives on: this is each client's second request to app-1.
        assert all(a.json()["requestCount"] == 2 for a in answers)

        api.set_server_state(backend, "app-1", "ready")
        assert api.server_status(backend, "app-1") == "UP"
        ready = new_clients_in_turn(stack)
        report(f"ready: {NEW_CLIENTS} new clients, one at a time -> {ready}")
        assert set(ready) == {"app-1", "app-2"}
        for instance_id, count in ready.items():
            assert abs(count / NEW_CLIENTS - SHARE) <= SHARE_TOLERANCE, ready

        api.set_server_state(backend, "app-1", "maint")
        assert api.server_status(backend, "app-1") == "MAINT"
        answers = round_of(sticky, url)
        again = round_of(sticky, url)
        report(f"maint: {len(sticky)} app-1 sticky clients -> "
               f"{[a.instance for a in answers]} (statuses {sorted({a.status for a in answers})})")
        assert all(a.ok and a.instance == "app-2" for a in answers), answers
        # Redispatched once, they now stick to app-2 (HAProxy rewrote their cookie).
        assert all(a.ok and a.instance == "app-2" for a in again), again
    finally:
        for client in sticky:
            client.close()
        api.set_server_state(backend, "app-1", "ready")


def test_drain_and_maint_survive_a_reload(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    api, backend = stack.api, stack.backend
    api.set_server_state(backend, "app-1", "drain")
    api.set_server_state(backend, "app-2", "maint")
    old_pid = api.worker_pid()
    stack.reload()
    statuses = api.statuses(backend)
    report(f"after reload (worker {old_pid} -> {api.worker_pid()}): {statuses}")
    assert statuses == {"app-1": "DRAIN", "app-2": "MAINT"}
    # Out of maint, app-2 is UP at once (docs/design.md); it is healthy, so that is right here.
    api.set_server_state(backend, "app-2", "ready")
    api.set_server_state(backend, "app-1", "ready")
    assert set(new_clients(stack, 10)) == {"app-1", "app-2"}
