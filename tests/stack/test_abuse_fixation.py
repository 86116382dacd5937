"""Session fixation through the front door, with either store: an attacker picks a session id,
plants it on a victim (a cookie set by a sibling site, or a link carrying X-Session-Id), waits for
the victim to use it, then uses it himself. Ids are only ever issued by the server, so the planted
id is never adopted: the victim gets a session of its own, and the attacker learns nothing."""

import json

import pycurl
import pytest

from tests.harness import load
from tests.harness.redis import RedisServer

CHOSEN = "attacker-chosen-id-123"


def post(url, number, headers=()):
    body = json.dumps({"clientId": "fixation", "requestNum": number}).encode()
    return load.Request("POST", url, body, ("Content-Type: application/json",) + tuple(headers))


@pytest.fixture
def redis_url():
    server = RedisServer()
    server.start()
    yield server.url
    server.close()


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_a_chosen_session_id_is_never_adopted(make_stack, report, request, store):
    session_store = request.getfixturevalue("redis_url") if store == "redis" else None
    stack = make_stack(instances=2, session_store=session_store)
    url = stack.url("/api/session")
    seen = []

    # The attacker names its id outright.
    direct = load.parallel([post(url, 1, (f"X-Session-Id: {CHOSEN}",))])[0]
    seen.append(direct)
    # A victim whose browser carries the planted cookie, browsing on.
    victim = load.Client(name="victim")
    victim.curl.setopt(pycurl.COOKIELIST,  # Netscape cookie-file format: one planted cookie.
                       f"127.0.0.1\tFALSE\t/\tFALSE\t0\ttandem_session\t{CHOSEN}")
    load.run_clients([victim], lambda client, n: post(url, n + 1), 5)
    seen += victim.outcomes
    # The attacker comes back with the planted id to ride the victim's session.
    rides = load.parallel([post(url, 1, (f"Cookie: tandem_session={CHOSEN}",)),
                           post(url, 1, (f"X-Session-Id: {CHOSEN}",))])
    seen += rides

    victim_ids = {o.json()["sessionId"] for o in victim.outcomes}
    victim_counts = [o.json()["requestCount"] for o in victim.outcomes]
    report(f"{store}: attacker's own try got {direct.json()['sessionId'][:8]}... "
           f"(count {direct.json()['requestCount']}); the victim with the planted cookie got "
           f"{sorted(i[:8] + '...' for i in victim_ids)} counting {victim_counts}; the attacker "
           f"riding the planted id got {[(o.json()['sessionId'][:8], o.json()['requestCount']) for o in rides]}")

    assert all(o.ok for o in seen), [o for o in seen if not o.ok]
    # The chosen id appears nowhere in what the service answered: not as an id, not in a cookie.
    for outcome in seen:
        assert CHOSEN.encode() not in outcome.body
        assert all(CHOSEN not in value for value in outcome.headers.values()), outcome.headers
    assert direct.json()["requestCount"] == 1
    # The victim has one session of its own, issued to it and counting on from 1.
    assert len(victim_ids) == 1 and CHOSEN not in victim_ids
    assert victim_counts == [1, 2, 3, 4, 5]
    assert victim.cookies().get("tandem_session") == victim_ids.pop()
    # The attacker never lands in the victim's session.
    for ride in rides:
        assert ride.json()["requestCount"] == 1
    victim.close()
