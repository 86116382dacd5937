"""A flood of new sessions from one address does not push out anyone else's session: HAProxy
counts, per address, the answers that made a session (they set the session cookie) and refuses
POST /api/session with 429 over tandem_lb_source_session_rate (haproxy/README.md, "Per-source
limits").

The flood is the incident's: 110,000 POST /api/session from one address in about 2 s (wrk),
cookieless, or each with a made-up session cookie posing as a returning client (which gets a new
session, hence counts the same). Meanwhile a client on another address keeps its session with a
POST every ROUND_PAUSE seconds, as a person using the application would, and its requestCount must
go 1, 2, 3, ... without a reset.

The instances keep at most MAX_SESSIONS sessions each instead of their 100,000, so that the
flood, if HAProxy let it through, would fill them many times over between two of the client's
requests. The last test lets it through (the limit off): the flood then churns the stores, and the
watched session still survives, because a full store drops sessions used once before sessions
whose client came back (segmented LRU). The edge limit and the store's order are two layers; each
holds on its own. The request-rate limit is switched off in all of them, so that what refuses the
flood is the session limit alone.
"""

import json

import pytest

from tests.harness import load
from tests.harness.wrk_flood import wrk_flood

FLOOD_REQUESTS = 110_000
FLOOD_SECONDS = 20  # upper bound; the flood takes about 2 s
FLOOD_CONNECTIONS = 50
CLIENT_SOURCE = "127.0.0.2"
ROUND_PAUSE = 0.5  # seconds between two POSTs of the watched client
MAX_SESSIONS = 1000
RATE_SLACK = 1.2  # HAProxy's rate over a sliding period lets a little more through at its turn


def session_post(url):
    def make(client, number):
        body = json.dumps({"clientId": client.name, "requestNum": number + 1}).encode()
        return load.Request("POST", url, body, ("Content-Type: application/json",))

    return make


def flood_while_a_client_keeps_its_session(stack, made_up_cookie=False):
    """The flood from 127.0.0.1 while the watched client, on CLIENT_SOURCE, keeps posting; returns
    (the flood's summary, the client's outcomes)."""
    url = stack.url("/api/session")
    cookie = stack.variables["tandem_lb_session_cookie_name"]
    client = load.Client(name="watched", source=CLIENT_SOURCE)
    try:
        load.run_clients([client], session_post(url), 1)  # Its session, before the flood.
        with load.Rounds([client], session_post(url), ROUND_PAUSE) as rounds:
            flood = wrk_flood(stack.url(), "POST", "/api/session", FLOOD_REQUESTS, FLOOD_SECONDS,
                              connections=FLOOD_CONNECTIONS,
                              cookie_name=cookie if made_up_cookie else None)
            rounds.stop()
        load.run_clients([client], session_post(url), 1)  # And once the flood is over.
    finally:
        client.close()
    return flood, client.outcomes


def make_flood_stack(make_stack, session_limit=None):
    overrides = {"tandem_lb_source_request_rate": 0}
    if session_limit is not None:
        overrides["tandem_lb_source_session_rate"] = session_limit
    return make_stack(instances=2, server_args=["--max-sessions", str(MAX_SESSIONS)],
                      overrides=overrides)


@pytest.mark.parametrize("made_up_cookie", [False, True], ids=["cookieless", "made-up-cookie"])
def test_session_flood_is_refused_and_others_keep_their_session(make_stack, report,
                                                                made_up_cookie):
    stack = make_flood_stack(make_stack)
    limit = stack.variables["tandem_lb_source_session_rate"]
    period = stack.variables["tandem_lb_source_rate_period"]
    flood, outcomes = flood_while_a_client_keeps_its_session(stack, made_up_cookie)

    failed = [o for o in outcomes if not o.ok]
    counts = [o.json()["requestCount"] for o in outcomes if o.ok]
    statuses = flood["statuses"]
    made, refused = statuses.get("200", 0), statuses.get("429", 0)
    kind = "with made-up session cookies" if made_up_cookie else "cookieless"
    report(f"{flood['answers']} POST /api/session {kind} from 127.0.0.1 in "
           f"{flood['seconds']:.2f} s: {made} made a session, {refused} refused with 429 "
           f"({refused / flood['answers']:.2%}; limit {limit} per {period} s)")
    report(f"client on {CLIENT_SOURCE}, a POST every {ROUND_PAUSE} s: {len(outcomes)} POSTs, "
           f"{len(failed)} failed, requestCount {counts}, instances "
           f"{sorted({o.instance for o in outcomes})}")
    assert flood["answers"] >= FLOOD_REQUESTS
    assert set(statuses) <= {"200", "429"}, statuses
    # Beyond the limit: the requests already past the check when the count reached it (one per
    # connection, as a creation is counted on its answer), and a little more when the flood
    # straddles the end of a period (HAProxy's rate then weighs the last period's count down).
    assert made <= limit * RATE_SLACK + FLOOD_CONNECTIONS
    assert refused >= 0.99 * flood["answers"]
    assert flood["retry_after_429"] == refused and flood["json_429"] == refused
    assert not failed, [(o.status, o.error) for o in failed[:5]]
    assert len(outcomes) >= 3
    assert counts == list(range(1, len(outcomes) + 1)), counts
    assert len({o.instance for o in outcomes}) == 1


def test_without_the_limit_the_store_still_keeps_the_returning_client(make_stack, report):
    """The same flood with tandem_lb_source_session_rate 0 (no limit): every POST is served and
    the stores evict thousands of sessions, yet the watched client's count goes on, since its
    session, used more than once, is the last kind a full store drops."""
    stack = make_flood_stack(make_stack, session_limit=0)
    flood, outcomes = flood_while_a_client_keeps_its_session(stack)
    counts = [o.json()["requestCount"] for o in outcomes if o.ok]
    evicted = sum(_metric(stack, i, "tandem_sessions_evicted_total") for i in stack.instances)
    report(f"no session limit: {flood['answers']} POST /api/session in {flood['seconds']:.2f} s, "
           f"{flood['statuses']}; the stores evicted {evicted:.0f} sessions; the client's "
           f"requestCount went {counts}")
    assert flood["statuses"].get("200", 0) >= FLOOD_REQUESTS
    # The flood did reach the stores: far more sessions than they hold were pushed out.
    assert evicted >= FLOOD_REQUESTS - 2 * MAX_SESSIONS
    assert counts == list(range(1, len(outcomes) + 1)), counts


def _metric(stack, instance_id, name):
    text = load.parallel([load.Request("GET", stack.instances[instance_id].url("/metrics"))])[0]
    for line in text.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{instance_id} has no {name}")
