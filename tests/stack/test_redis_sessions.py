"""Shared sessions in Redis (tandem-server --session-store redis://...): no session is lost when
an instance dies, increments from several instances are exact, and a Redis outage costs only the
session requests made while Redis is away. A real redis-server started by the harness
(tests/harness/redis.py) behind the usual stack of HAProxy and two instances.
"""

import collections
import json
import re
import signal
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.harness import load
from tests.harness.load import session_post
from tests.harness.poller import Poller
from tests.harness.redis import check_sessions
from tests.harness.roll import roll_instance
from tests.harness.runtime_api import StatusMonitor
from tests.harness.stack import ONE_ADDRESS_CROWD

# Scenario 1.
CLIENTS = 50
REQUESTS_BEFORE = 10
REQUESTS_AFTER = 10
MAX_ATTEMPTS = 5  # A client sends a failed POST again at most this often.
RETRY_PAUSE = 0.1  # seconds between a failure and the client's next attempt
# The kill in the middle of requests: after MID_KILL_AT seconds of MID_KILL_ROUNDS POSTs each
# (about 0.6 s in all).
MID_KILL_AT = 0.15
MID_KILL_ROUNDS = 60
# Scenario 2.
INCREMENTS = 1000
# Scenario 3.
RATE = 100  # requests per second, half GET /api/whoami, half POST /api/session
DURATION = 15  # seconds of load
OUTAGE_AT = 5  # seconds into the load
OUTAGE = 5  # seconds without Redis
SESSIONS = 10  # sessions the POSTs are spread over (five POSTs per second each)
# The redis session store's constants (server/src/redis_session_store.hpp) bound when a session
# request may fail around an outage:
COMMAND_TIMEOUT = 1.0  # kCommandTimeout: a command Redis does not answer fails after this
CONNECT_TIMEOUT = 1.0  # kConnectTimeout: a connection attempt is given up after this
MAX_BACKOFF = 2.0  # kMaxBackoff: the longest pause between two connection attempts
DEADLINE_CHECK = 0.05  # kDeadlineCheckMs: how often the store looks for late commands
# Before the outage: only a request already waiting for Redis when it went away can fail, and
# Redis answers in well under a millisecond; 0.25 s is for the scheduling of a loaded machine.
MARGIN_BEFORE = 0.25
# After Redis is back, the store may be in the middle of a connection attempt that was made while
# nothing listened. hiredis 0.14's libuv adapter drops poll errors, so a refused connect is seen
# only when kConnectTimeout expires (not at once), and the next attempt follows after the current
# backoff (at most kMaxBackoff): worst case CONNECT_TIMEOUT + MAX_BACKOFF + DEADLINE_CHECK
# = 3.05 s, plus 0.2 s for the scheduling of a loaded machine.
MARGIN_AFTER = CONNECT_TIMEOUT + MAX_BACKOFF + DEADLINE_CHECK + 0.2
HEALTH_POLL = 0.1  # seconds between two /health polls of each instance
STORE_STATES = ("ok", "connecting", "unavailable")
# Scenario 4 (the rolling restart), with rolling-restart.yml's settings.
ROLL_CLIENTS = 20
ROLL_ROUND_PAUSE = 0.2  # seconds between two rounds of one POST per client: 100 requests/s


def post_rounds(clients, url, rounds):
    """Each client sends `rounds` POST /api/session one after the other (all clients at once,
    round by round); a failed POST is sent again, up to MAX_ATTEMPTS times, before the client
    goes on. Returns the failed attempts, as a Counter of "status error"."""
    failed = collections.Counter()
    for _ in range(rounds):
        pending = list(clients)
        for _ in range(MAX_ATTEMPTS):
            load.run_clients(pending, lambda client, _: session_post(
                url, client.name, len(client.outcomes) + 1), 1)
            pending = [client for client in pending if not client.outcomes[-1].ok]
            failed.update(f"{c.outcomes[-1].status} {c.outcomes[-1].error}".strip()
                          for c in pending)
            if not pending:
                break
            time.sleep(RETRY_PAUSE)
        assert not pending, (f"{len(pending)} clients failed {MAX_ATTEMPTS} times: "
                             f"{[c.outcomes[-1] for c in pending[:3]]}")
    return failed


def test_sessions_survive_the_death_of_their_instance(make_redis, make_stack, report):
    """app-1 is killed between the two halves and the second half starts once
    it is dead, before HAProxy's checks notice (1.25 s): its clients' POSTs are redispatched on
    the refused connection. No POST was in flight at the kill, so one that fails never reached
    a living instance and sending it again cannot count twice; the test proves it, since every
    client must see exactly 1, 2, ..., 20."""
    redis = make_redis()
    stack = make_stack(instances=2, session_store=redis.url, overrides=ONE_ADDRESS_CROWD)
    cookie = stack.variables["tandem_lb_cookie_name"]
    url = stack.url("/api/session")
    clients = [load.Client(name=f"client-{n}") for n in range(CLIENTS)]
    try:
        failed_before = post_rounds(clients, url, REQUESTS_BEFORE)
        homes = {client.name: client.outcomes[-1].instance for client in clients}
        on_app1 = [client for client in clients if homes[client.name] == "app-1"]
        sticky = all(len({o.instance for o in client.outcomes}) == 1 for client in clients)

        sent_before = {client.name: len(client.outcomes) for client in clients}
        killed_at = time.monotonic()
        stack.stop_instance("app-1", signal.SIGKILL)
        # A signal is delivered asynchronously: until app-1 is gone it may still accept a POST
        # and die before answering it.
        exit_code = stack.wait_instance_exit("app-1", timeout=5.0)
        dead_after = time.monotonic() - killed_at
        down_before = stack.api.server_status(stack.backend, "app-1")
        failed_after = post_rounds(clients, url, REQUESTS_AFTER)
        took = time.monotonic() - killed_at

        problems = []
        for client in clients:
            answers = [o.json() for o in client.outcomes if o.ok]
            counts = [answer["requestCount"] for answer in answers]
            sessions = {answer["sessionId"] for answer in answers}
            total = REQUESTS_BEFORE + REQUESTS_AFTER
            if counts != list(range(1, total + 1)):
                problems.append(f"{client.name} (on {homes[client.name]}): counts {counts}")
            elif len(sessions) != 1 or redis.session_count(sessions.pop()) != total:
                problems.append(f"{client.name}: sessions {sessions}, stored count wrong")
            elif any(o.instance != "app-2"
                     for o in client.outcomes[sent_before[client.name]:] if o.ok):
                problems.append(f"{client.name}: answered by a dead app-1 after the kill")
            elif client.cookies().get(cookie) != "app-2":
                problems.append(f"{client.name}: stickiness cookie {client.cookies().get(cookie)}")
        report(f"{CLIENTS} clients x {REQUESTS_BEFORE} POST: {len(on_app1)} on app-1, "
               f"{CLIENTS - len(on_app1)} on app-2 (sticky: {sticky}), "
               f"{sum(failed_before.values())} failed; app-1 SIGKILLed (exit {exit_code}, "
               f"dead after {dead_after * 1000:.1f} ms, HAProxy status then {down_before}); "
               f"{REQUESTS_AFTER} more POST each, done {took:.2f} s after the kill: "
               f"{sum(failed_after.values())} failed and sent again {dict(failed_after)}; "
               f"{CLIENTS - len(problems)} of {CLIENTS} clients at exactly "
               f"{REQUESTS_BEFORE + REQUESTS_AFTER} with every count seen once")
        assert not failed_before
        assert sticky and 0 < len(on_app1) < CLIENTS
        assert exit_code == -signal.SIGKILL
        assert not problems, "\n".join(problems)
    finally:
        for client in clients:
            client.close()


def test_kill_in_the_middle_of_requests_loses_no_session(make_redis, make_stack, report):
    """app-1 killed while its clients' POSTs are in flight. No session is lost
    or reset and no answered increment is lost. But a POST app-1 had carried out (Redis counted
    it) and died before answering cannot be told from one it never received: HAProxy closes the
    client's keep-alive connection without an answer (it replays no POST), libcurl then sends
    the POST again ("Connection died, retrying a fresh connect") to app-2, and that request is
    counted twice. At most one per client: each has one request in flight. Reported, bounded."""
    redis = make_redis()
    stack = make_stack(instances=2, session_store=redis.url, overrides=ONE_ADDRESS_CROWD)
    url = stack.url("/api/session")
    clients = [load.Client(name=f"client-{n}") for n in range(CLIENTS)]
    try:
        load.run_clients(clients, lambda client, n: session_post(url, client.name, n + 1), 2)
        homes = {client.name: client.outcomes[-1].instance for client in clients}
        killer = threading.Timer(MID_KILL_AT, stack.stop_instance, ("app-1", signal.SIGKILL))
        killer.start()
        load.run_clients(clients, lambda client, n: session_post(url, client.name, n + 3),
                         MID_KILL_ROUNDS)
        killer.join()
        exit_code = stack.wait_instance_exit("app-1", timeout=5.0)

        problems, twice, failed = [], [], 0
        for client in clients:
            answers = [o.json() for o in client.outcomes if o.ok]
            counts = [answer["requestCount"] for answer in answers]
            sessions = {answer["sessionId"] for answer in answers}
            stored = redis.session_count(answers[0]["sessionId"])
            failed += len(client.outcomes) - len(answers)
            if len(sessions) != 1 or counts != sorted(set(counts)) or counts[0] != 1:
                problems.append(f"{client.name} (on {homes[client.name]}): sessions "
                                f"{sessions}, counts {counts}")
            elif not len(answers) <= stored <= len(answers) + 1 or stored != counts[-1]:
                problems.append(f"{client.name}: stored {stored}, answered {len(answers)}")
            elif stored == len(answers) + 1:
                twice.append(f"{client.name} ({homes[client.name]})")
        report(f"{CLIENTS} clients, app-1 SIGKILLed (exit {exit_code}) {MID_KILL_AT} s into "
               f"{MID_KILL_ROUNDS} POST each: {failed} failed, sessions lost or reset "
               f"{len(problems)}; counted without an answer of their own (replayed by libcurl "
               f"or failed after Redis counted them): {len(twice)} {twice[:5]}")
        assert not problems, "\n".join(problems)
        assert all(home.endswith("(app-1)") for home in twice)
    finally:
        for client in clients:
            client.close()


def test_concurrent_increments_on_one_session_are_exact(make_redis, make_stack, report):
    """1,000 POSTs of one session at once (the session made by the first, the
    other 999 naming it by X-Session-Id, without cookies), so that HAProxy's round robin splits
    them over both instances; every count from 1 to 1,000 is answered once."""
    redis = make_redis()
    stack = make_stack(instances=2, session_store=redis.url, overrides=ONE_ADDRESS_CROWD)
    first = load.parallel([session_post(stack.url("/api/session"), "concurrent", 1)])[0]
    assert first.ok, first
    session_id = first.json()["sessionId"]
    started = time.monotonic()
    outcomes = load.parallel([session_post(stack.url("/api/session"), "concurrent", n + 1,
                                           session_id) for n in range(1, INCREMENTS)])
    took = time.monotonic() - started
    failed = [o for o in outcomes if not o.ok]
    per_instance = collections.Counter(o.instance for o in outcomes if o.ok)
    counts = sorted([first.json()["requestCount"]]
                    + [o.json()["requestCount"] for o in outcomes if o.ok])
    stored = redis.session_count(session_id)
    report(f"{INCREMENTS - 1} concurrent POST of one session (after the first) in {took:.2f} s: {len(failed)} failed; "
           f"per instance {dict(per_instance)}; stored requestCount {stored}; distinct answered "
           f"counts {len(set(counts))}")
    assert not failed, f"{len(failed)} failed, first: {failed[0]}"
    assert set(per_instance) == set(stack.instances)
    assert min(per_instance.values()) >= INCREMENTS // 4
    assert counts == list(range(1, INCREMENTS + 1))
    assert stored == INCREMENTS


class HealthPoller(Poller):
    """Polls every instance's own /health in a thread: (time, instance, HTTP status, store
    state) each HEALTH_POLL seconds."""

    def __init__(self, stack):
        super().__init__(HEALTH_POLL, name="health-poller")
        self.stack = stack
        self.samples = []

    def sample(self):
        for instance in self.stack.instances.values():
            try:
                with urllib.request.urlopen(instance.url("/health"), timeout=2.0) as answer:
                    status, body = answer.status, json.loads(answer.read())
            except urllib.error.HTTPError as error:
                status, body = error.code, {}
            except OSError as error:
                status, body = 0, {"error": str(error)}
            state = body.get("sessionStore", {}).get("state")
            self.samples.append((time.monotonic(), instance.id, status, state))


def instance_metrics(stack):
    """{instance: (tandem_session_store_errors_total, 503s of /api/session, store up)} from each
    instance's own /metrics (the public frontend refuses it)."""
    found = {}
    for instance in stack.instances.values():
        with urllib.request.urlopen(instance.url("/metrics"), timeout=2.0) as answer:
            text = answer.read().decode()

        def value(pattern):
            match = re.search(r"^" + pattern + r" (\d+)$", text, re.MULTILINE)
            return int(match.group(1)) if match else 0

        session_503 = r'tandem_http_requests_total\{route="/api/session",code="503"\}'
        found[instance.id] = (value("tandem_session_store_errors_total"), value(session_503),
                              value(r'tandem_session_store_up\{store="redis"\}'))
    return found


OUTAGES = {
    # Redis dies (SIGKILL) and is started again 5 s later on the same port; its append-only file
    # keeps the sessions (every answered increment was written to it before the answer left).
    "killed-restarted": dict(appendonly=True),
    # Redis hangs (SIGSTOP) for 5 s, then goes on (SIGCONT): it keeps everything in memory.
    "hung": dict(appendonly=False),
}


@pytest.mark.parametrize("outage", list(OUTAGES))
def test_redis_outage_fails_only_session_requests(make_redis, make_stack, report, outage):
    """100 requests/s, half of them GET /api/whoami, half POST /api/session of
    SESSIONS sessions (made first, then named by X-Session-Id, cookieless: each session's POSTs
    land on both instances); Redis goes away 5 s into the run, for 5 s."""
    redis = make_redis(**OUTAGES[outage])
    stack = make_stack(instances=2, session_store=redis.url, overrides=ONE_ADDRESS_CROWD)
    whoami, session_url = stack.url("/api/whoami"), stack.url("/api/session")
    made = load.parallel([session_post(session_url, "outage", 0) for _ in range(SESSIONS)])
    assert all(o.ok for o in made), made
    session_ids = [o.json()["sessionId"] for o in made]  # Each counted once already.

    def request_for(number):
        if number % 4 >= 2:  # 0, 1: POST; 2, 3: GET. Round robin gives each instance both.
            return load.Request("GET", whoami)
        post = number // 4 * 2 + number % 4
        return session_post(session_url, "outage", post, session_ids[post % SESSIONS])

    paced = load.PacedLoad(whoami, RATE, DURATION, request_for=request_for)
    monitors = [StatusMonitor(stack.api, stack.backend, server) for server in stack.instances]
    with HealthPoller(stack) as health, monitors[0], monitors[1]:
        t0 = paced.start()
        time.sleep(max(0.0, t0 + OUTAGE_AT - time.monotonic()))
        gone_at = time.monotonic()
        if outage == "hung":
            redis.pause()
        else:
            redis.stop(signal.SIGKILL)
        time.sleep(max(0.0, gone_at + OUTAGE - time.monotonic()))
        if outage == "hung":
            redis.resume()
        else:
            redis.start()  # Returns once Redis answers PING.
        back_at = time.monotonic()
        outcomes = paced.join()
        time.sleep(3 * HEALTH_POLL)
    metrics = instance_metrics(stack)

    posts = [o for o in outcomes if o.request.method == "POST"]
    gets = [o for o in outcomes if o.request.method == "GET"]
    failed_gets = [o for o in gets if not o.ok]
    failed_posts = [o for o in posts if not o.ok]
    window = (gone_at - MARGIN_BEFORE, back_at + MARGIN_AFTER)
    outside = [o for o in failed_posts if not window[0] <= o.started <= window[1]]
    not_503 = [o for o in failed_posts if o.status != 503 or b"session store" not in o.body]
    first_failed = min((o.started for o in failed_posts), default=None)
    last_failed = max((o.started for o in failed_posts), default=None)
    answered_at = max((o.finished for o in failed_posts), default=None)
    # The store bounds every wait for Redis: kCommandTimeout, checked every kDeadlineCheckMs.
    longest_wait = max(o.finished - o.started for o in posts)

    # Sessions: no answered increment lost, none reset. A request answered 503 because Redis
    # did not answer in time may still be carried out once Redis goes on (it was sent), so the
    # count lies between the answered increments and all the attempts.
    by_session = collections.defaultdict(list)
    for outcome in posts:
        by_session[outcome.request.headers[1].split(": ", 1)[1]].append(outcome)
    session_problems = []
    carried_out_anyway = 0
    for session_id, attempts in sorted(by_session.items()):
        answered = [o for o in attempts if o.ok]
        counts = [o.json()["requestCount"] for o in answered]
        before = [o.json()["requestCount"] for o in answered if o.finished < gone_at]
        after = [o.json()["requestCount"] for o in answered if o.started > back_at]
        # Less the request that made the session before the run.
        stored = redis.session_count(session_id)
        during_run = None if stored is None else stored - 1
        if during_run is None or not len(answered) <= during_run <= len(attempts):
            session_problems.append(f"{session_id}: stored {stored}, answered {len(answered)} "
                                    f"of {len(attempts)} (+1 before the run)")
        elif len(set(counts)) != len(counts) or max(counts) != stored:
            session_problems.append(f"{session_id}: a count answered twice or beyond {stored}")
        elif not before or not after or min(after) <= max(before):
            session_problems.append(f"{session_id}: reset? before the outage {before[-3:]}, "
                                    f"after {after[:3]}")
        else:
            carried_out_anyway += during_run - len(answered)

    states = collections.defaultdict(collections.Counter)  # period -> state -> samples
    for when, _, status, state in health.samples:
        period = ("during" if gone_at <= when <= back_at
                  else "before" if when < gone_at else "after")
        states[period][state if status == 200 else f"HTTP {status}"] += 1
    unhealthy = [s for s in health.samples if s[2] != 200 or s[3] not in STORE_STATES]
    final_states = {instance_id: next(s[3] for s in reversed(health.samples) if s[1] == instance_id)
                    for instance_id in stack.instances}
    lb_statuses = {m.server: [status for _, status in m.changes] for m in monitors}
    errors_total = sum(errors for errors, _, _ in metrics.values())
    answered_503 = sum(code_503 for _, code_503, _ in metrics.values())

    report(f"{outage}: Redis away {back_at - gone_at:.2f} s from {gone_at - t0:.2f} s; "
           f"{len(outcomes)} requests: {len(gets)} GET, {len(failed_gets)} failed; "
           f"{len(posts)} POST, {len(failed_posts)} failed (503): the first started "
           f"{_rel(first_failed, gone_at)} from Redis going away, the last "
           f"{_rel(last_failed, back_at)} from Redis being back (answered "
           f"{_rel(answered_at, back_at)}); allowed -{MARGIN_BEFORE} s .. "
           f"+{MARGIN_AFTER:.2f} s; longest session request {longest_wait:.2f} s")
    report(f"{outage}: sessions {len(by_session)}, none reset; increments answered 503 but "
           f"carried out once Redis went on: {carried_out_anyway}; errors_total "
           f"{errors_total} = 503s counted by the instances {answered_503} = 503s received "
           f"{len(failed_posts)}; store states before {dict(states['before'])} during "
           f"{dict(states['during'])} after {dict(states['after'])}; HAProxy statuses "
           f"{lb_statuses}")

    assert len(outcomes) == RATE * DURATION
    assert not failed_gets, f"{len(failed_gets)} GET failed, first: {failed_gets[0]}"
    assert not not_503, f"failed otherwise than 503: {not_503[:3]}"
    assert failed_posts, "no session request failed: was Redis away at all?"
    assert not outside, (f"{len(outside)} session requests failed outside the outage, first "
                         f"started at {outside[0].started - t0:.2f} s: {outside[0]}")
    assert not session_problems, "\n".join(session_problems)
    assert longest_wait <= COMMAND_TIMEOUT + DEADLINE_CHECK + 0.2, longest_wait
    # No instance became unhealthy: /health answered 200 throughout, and HAProxy kept both UP.
    assert not unhealthy, f"{len(unhealthy)} /health polls not 200/known state: {unhealthy[:3]}"
    assert all(statuses == ["UP"] for statuses in lb_statuses.values()), lb_statuses
    # Recovered without a restart: the store is up again, and the metrics count every error.
    assert final_states == {instance_id: "ok" for instance_id in stack.instances}
    assert all(up == 1 for _, _, up in metrics.values()), metrics
    assert errors_total == answered_503 == len(failed_posts), metrics
    if outage == "killed-restarted":
        # A refused connection is reported: the store is not "ok" while Redis is away.
        assert set(states["during"]) - {"ok"}, states["during"]


def test_rolling_restart_loses_no_session(make_redis, make_stack, report):
    """On the harness's stack: both instances restarted one at a time through
    HAProxy while sticky clients send POST /api/session (100 requests/s in all). The same
    procedure under Ansible, in a real systemd: tests/system/test_redis_rolling_restart.py."""
    redis = make_redis()
    stack = make_stack(instances=2, session_store=redis.url, overrides=ONE_ADDRESS_CROWD)
    url = stack.url("/api/session")
    clients = [load.Client(name=f"sticky-{n}") for n in range(ROLL_CLIENTS)]
    try:
        with load.Rounds(clients, lambda client, n: session_post(url, client.name, n + 1),
                         ROLL_ROUND_PAUSE) as rounds:
            time.sleep(1.0)  # Every client has its session and its instance before the roll.
            started = time.monotonic()
            exit_codes = {instance_id: roll_instance(stack, instance_id)
                          for instance_id in stack.instances}
            took = time.monotonic() - started
            time.sleep(1.0)  # And goes on for a while on the restarted instances.
            rounds.stop()

        outcomes = [o for client in clients for o in client.outcomes]
        failed = [o for o in outcomes if not o.ok]
        problems, moved = check_sessions(clients, redis.session_count)
        report(f"rolling restart of {list(stack.instances)} in {took:.1f} s (exit codes "
               f"{exit_codes}) under {len(outcomes)} POST /api/session from {ROLL_CLIENTS} "
               f"sticky clients ({rounds.rounds} rounds): {len(failed)} failed; {moved} clients "
               f"moved and went on; {ROLL_CLIENTS - len(problems)} of {ROLL_CLIENTS} with every "
               f"count exactly once and equal to Redis's")
        for failure in failed[:5]:
            report(f"  failed: status {failure.status} {failure.error or failure.body[:100]!r}")
        assert not failed
        assert not problems, "\n".join(problems)
        assert moved == ROLL_CLIENTS, "every client's instance was restarted under it"
        assert all(code == 0 for code in exit_codes.values()), exit_codes
    finally:
        for client in clients:
            client.close()


def _rel(when, since):
    return "n/a" if when is None else f"{when - since:+.2f} s"
