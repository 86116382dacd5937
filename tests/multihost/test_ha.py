"""No single point of failure, the balancers and Redis, on the fleet test_fleet.py deployed and
drilled (one fleet for the whole story, conftest.py: ansible/inventories/example's eight hosts,
a pair of balancers sharing one virtual address, two application hosts, three Redis hosts with
Sentinels, the monitoring), under load through the virtual address, as clients reach the site:

1. as deployed: one balancer holds the address, both run keepalived and list the four instances
   UP; redis1 is the primary, redis2 and redis3 replicate it, and every Sentinel can fail it over
   (CKQUORUM);
2. a server held in maint and another drained on both balancers (as a roll or an operator leaves
   them); the balancer holding the address powered off at once: the other holds it within 3 s,
   fewer than 0.5 % of the requests fail, and none started after the takeover;
3. every Sentinel names one primary, whose writes reach both replicas;
4. the Redis primary's host powered off under load (the lost balancer still off): a replica is
   promoted, the instances follow it, session requests fail only during the failover window,
   every acknowledged increment is counted once;
5. mon1's Prometheus fires TandemBalancerDown for the lost balancer (which is why it stays off
   through step 4: the alert's minute runs during the Redis drill);
6. the dead balancer powered on under load: its HAProxy copies the survivor's maint and drain
   states before its keepalived starts, it comes back as BACKUP, and the address stays where it
   is: no request fails;
7. mon1's Prometheus fires TandemRedisDown for the lost primary (its minute runs from the cut
   in step 4 through steps 5 and 6) and TandemRedisPrimaryChanged for the promoted replica (at
   once, for five minutes);
8. the old primary powered on comes back as a replica (and test_shrink.py's deploy.yml leaves
   it one, changing nothing on the Redis hosts).

The load is test_fleet.py's (tests/multihost/drills.py): RATE GET /api/whoami per second and
CLIENTS sticky session clients over HTTPS, the site's name resolved to the virtual address. The
tests are one story and run in file order, after test_fleet.py and before test_shrink.py.
"""

import collections
import time

from tests.harness.poller import Poller
from tests.harness.redis import RedisError, check_sessions_across_failures, session_count
from tests.harness.waiting import wait_until
from tests.multihost.drills import (ALL_IDS, APP1, APP2, CLIENTS, LBS, MASTER_NAME,
                                    MONITORING, REDIS_HOSTS, REDIS_PORT, SENTINEL_PORT, Traffic,
                                    address, guest_get, named_primary, redis_command,
                                    redis_host_at, require_ok, statuses, wait_up)

# TandemBalancerDown's and TandemRedisDown's minute, plus a scrape and an evaluation (10 s each)
# and some slack.
ALERT_BOUND = 120.0
# What the pair promises (ansible/README.md, "Two balancers and one address").
FAILOVER_SECONDS = 3.0
FAILED_SHARE = 0.005
# The states the drills set on both balancers before one is lost: one server in maint (a roll
# under way, an instance taken out), one drained.
HELD = {"app2-2": "maint", "app1-2": "drain"}


def holds(fleet, lb):
    """Whether the balancer (a running guest) has the virtual address on an interface."""
    host = fleet.fleet[lb]
    if not host.running or host.guest.init_pid is None:
        return False
    found = host.run(["ip", "-o", "-4", "address", "show", "to", fleet.virtual_address],
                     check=False, timeout=10)
    return found.returncode == 0 and bool(found.stdout.strip())


def holders(fleet):
    return [lb for lb in LBS if holds(fleet, lb)]


class HolderWatch(Poller):
    """Which balancers hold the address, sampled every `interval` seconds in a `with` block."""

    def __init__(self, fleet, interval=0.1):
        super().__init__(interval, "vip-watch")
        self.fleet = fleet
        self.samples = []  # (monotonic time, [holders])

    def sample(self):
        try:
            self.samples.append((time.monotonic(), holders(self.fleet)))
        except Exception:  # A guest between two lives; the next sample tells.
            pass


def unit_state(fleet, host, unit):
    return fleet.fleet[host].guest.show(unit, "ActiveState", "UnitFileState")


def set_on_every_balancer(fleet, states):
    """Each server's state on both balancers, as an operator sets it: server-state.yml."""
    for server, state in states.items():
        run = fleet.playbook("server-state.yml", extra_vars={"server": server, "state": state})
        require_ok(run)
        if state != "ready":  # back in rotation once its checks pass: wait_up()
            seen = {lb: statuses(fleet, lb)[server] for lb in LBS}
            assert all(status.startswith(state.upper()) for status in seen.values()), seen


# What the drills lost and when, for the steps that follow up on them (the alerts, the returns):
# "balancer": (host, cut), "redis": (old primary, promoted host, its address, cut).
LOST = {}


# --- 1. the pair and the Sentinels, as deployed ---------------------------------------------------

def test_the_pair_and_the_sentinels_as_deployed(fleet, report):
    """What test_fleet.py's deployments left on the balancers and the Redis hosts: the address
    on one balancer, keepalived active on both and the states' copy enabled, each listing the
    four instances UP; redis1 the primary, redis2 and redis3 its replicas, every Sentinel able to
    fail it over (CKQUORUM); every instance's store sentinel:// to the three."""
    holding = holders(fleet)
    units = {lb.split(".")[0]: {unit: unit_state(fleet, lb, unit) for unit in (
        "keepalived.service", "tandem-lb-take-states.service")} for lb in LBS}
    roles = {host.split(".")[0]: redis_command(fleet, host, REDIS_PORT, "ROLE")[:3]
             for host in REDIS_HOSTS}
    quorum = {host.split(".")[0]: redis_command(fleet, host, SENTINEL_PORT, "SENTINEL",
                                                "CKQUORUM", MASTER_NAME)
              for host in REDIS_HOSTS}
    # Each instance's store, its password left out of the report.
    stores = {value.split("=", 1)[1].split("://")[0] + "://" + value.rsplit("@", 1)[-1]
              for app in (APP1, APP2) for value in fleet.fleet[app].run(
                  ["sh", "-c", "cat /etc/tandem/*.env"]).stdout.splitlines()
              if value.startswith("TANDEM_SESSION_STORE=")}
    report(f"as deployed: {fleet.virtual_address} held by {holding}; units {units}; Redis "
           f"roles {roles}; Sentinels: {quorum}; instances' store {stores}")
    assert len(holding) == 1
    assert len(stores) == 1 and next(iter(stores)).startswith("sentinel://"), stores
    for lb in LBS:
        wait_up(fleet, ALL_IDS, lb=lb)
        assert units[lb.split(".")[0]]["keepalived.service"]["ActiveState"] == "active"
        assert units[lb.split(".")[0]]["tandem-lb-take-states.service"]["UnitFileState"] \
            == "enabled"
    primary = address(fleet, REDIS_HOSTS[0])
    assert roles["redis1"][0] == "master"
    for replica in ("redis2", "redis3"):
        assert roles[replica][:3] == ["slave", primary, REDIS_PORT], roles
    assert all(answer.startswith("OK") for answer in quorum.values()), quorum


# --- 2. the balancer holding the address lost -----------------------------------------------------

def test_balancer_holding_the_address_powered_off_under_load(fleet, report):
    """The holder's power cut (its link silent at once, every process killed, no VRRP goodbye):
    the other hears no advert for 3 x 0.5 s plus its skew and takes the address. A request on a
    connection to the dead balancer gets no answer until the address answers again; the
    survivor resets that connection and the client sends the request once more on a new one,
    as browsers do (a request the dead balancer had already forwarded may fail or count twice:
    the session check allows for both); new connections retry their SYN. The balancer stays
    off through the Redis drill, until its alert has fired."""
    holder = holders(fleet)[0]
    survivor = next(lb for lb in LBS if lb != holder)
    set_on_every_balancer(fleet, HELD)
    with Traffic(fleet, "holder lost", target=fleet.virtual_address, lb=survivor) as traffic:
        cut = time.monotonic()
        fleet.fleet.power_off(holder, force=True)
        off = time.monotonic()
        wait_until(lambda: holds(fleet, survivor), 10.0, 0.02,
                   f"{survivor} to hold {fleet.virtual_address}")
        took = time.monotonic()
        time.sleep(8.0)
    failed_gets, failed_posts, _ = traffic.summarize(report)
    total = len(traffic.get_outcomes) + len(traffic.posts)
    failed = failed_gets + failed_posts
    late = [o for o in failed if o.started > took]
    served_after = {o.instance for o in traffic.get_outcomes + traffic.posts
                    if o.ok and o.started > took}
    report(f"holder lost: {holder.split('.')[0]} powered off (gone {off - cut:.2f} s after the "
           f"command); {survivor.split('.')[0]} held {fleet.virtual_address} "
           f"{took - cut:.2f} s after the cut; {len(failed)} of {total} requests failed "
           f"({len(failed) / max(total, 1):.2%}), {len(late)} of them started after the "
           f"takeover; answered afterwards by {sorted(served_after)}; states on "
           f"{survivor.split('.')[0]}: {statuses(fleet, survivor)}")
    primary = named_primary(fleet, REDIS_HOSTS[0])
    problems, _, skipped = check_sessions_across_failures(
        traffic.clients, lambda session_id: session_count(
            REDIS_PORT, session_id, password=fleet.secrets["vault_redis_password"],
            host=primary))
    report(f"holder lost: {CLIENTS - len(problems)} of {CLIENTS} session clients with every "
           f"acknowledged count once in Redis ({skipped} numbers skipped by failed or resent "
           "requests that had counted)")
    assert took - cut <= FAILOVER_SECONDS
    assert len(failed) / total < FAILED_SHARE
    assert not late
    assert "app2-2" not in served_after
    assert not problems, "\n".join(problems)
    LOST["balancer"] = (holder, cut)


def firing(fleet):
    """The alerts mon1's Prometheus has firing, one read: {alert name: [labels of each]}."""
    answer = guest_get(fleet, MONITORING, "http://127.0.0.1:9090/api/v1/alerts")
    found = collections.defaultdict(list)
    for alert in answer["data"]["alerts"]:
        if alert["state"] == "firing":
            found[alert["labels"]["alertname"]].append(alert["labels"])
    return found


# --- 3. the Redis replicas ------------------------------------------------------------------------

def test_redis_replicas_follow_the_primary_named_by_the_sentinels(fleet, report):
    """What the sessions' failover rests on, without tandem-server's part: every Sentinel names
    the same primary, the primary lists both replicas online, and a key written there reaches
    them (WAIT 2)."""
    named = {host.split(".")[0]: redis_command(fleet, host, SENTINEL_PORT, "SENTINEL",
                                               "get-master-addr-by-name", MASTER_NAME)
             for host in REDIS_HOSTS}
    primary = redis_host_at(fleet, named["redis1"][0])
    redis_command(fleet, primary, REDIS_PORT, "SET", "tandem:ha-drill", "1")
    acknowledged = redis_command(fleet, primary, REDIS_PORT, "WAIT", "2", "2000")
    copies = {}
    for host in REDIS_HOSTS:
        try:
            copies[host.split(".")[0]] = redis_command(fleet, host, REDIS_PORT, "GET",
                                                       "tandem:ha-drill")
        except RedisError as error:
            copies[host.split(".")[0]] = str(error)
    redis_command(fleet, primary, REDIS_PORT, "DEL", "tandem:ha-drill")
    report(f"redis: the Sentinels name {named}; WAIT 2 acknowledged by {acknowledged}; the key "
           f"on each node: {copies}")
    assert len({tuple(answer) for answer in named.values()}) == 1
    assert acknowledged == 2
    assert set(copies.values()) == {"1"}


# --- 4. the Redis primary lost --------------------------------------------------------------------

def failure_causes(outcomes):
    """How many failed for each cause: the answer's JSON error up to its first colon past the
    store's prefix (a count per kind, not per address), or the client's own error."""
    causes = collections.Counter()
    for outcome in outcomes:
        try:
            cause = outcome.json()["error"].removeprefix("the session store is unavailable: ")
        except (ValueError, KeyError, TypeError):
            cause = outcome.error or f"status {outcome.status}"
        causes[cause.split(" (")[0][:60]] += 1
    return dict(causes.most_common())


def test_redis_primary_powered_off_under_load_a_replica_takes_over(fleet, report):
    """The primary's host powered off at once under load, the instances' store being
    sentinel://: the Sentinels promote a replica, the instances follow (+switch-master), session
    requests fail only during the failover window, and every increment acknowledged before,
    during and after it is in the final counts exactly once (an answered count never repeats or
    goes back; a failed request may have counted, and then skips one number). The lost balancer
    is still off: the load goes through the other."""
    before = named_primary(fleet, REDIS_HOSTS[1])
    primary = redis_host_at(fleet, before)
    survivors = [host for host in REDIS_HOSTS if host != primary]
    holder = holders(fleet)[0]
    with Traffic(fleet, "redis primary lost", target=fleet.virtual_address,
                 lb=holder) as traffic:
        cut = time.monotonic()
        fleet.fleet.power_off(primary, force=True)
        after = wait_until(lambda: named_primary(fleet, survivors[0]), 30.0, 0.1,
                           "the Sentinels to name another primary",
                           holds=lambda ip: ip is not None and ip != before)
        promoted = time.monotonic()
        time.sleep(10.0)
    failed_gets, failed_posts, _ = traffic.summarize(report)
    new_primary = redis_host_at(fleet, after)
    window = (max(o.finished for o in failed_posts) - min(o.started for o in failed_posts)
              if failed_posts else 0.0)
    late = [o for o in failed_posts if o.started > promoted + 5.0]
    problems, moved, skipped = check_sessions_across_failures(
        traffic.clients, lambda session_id: session_count(
            REDIS_PORT, session_id, password=fleet.secrets["vault_redis_password"],
            host=after))
    acknowledged = sum(1 for o in traffic.posts if o.ok)
    report(f"redis primary lost: {primary.split('.')[0]} powered off; the Sentinels named "
           f"{new_primary.split('.')[0]} {promoted - cut:.2f} s after the cut; "
           f"{len(failed_posts)} of {len(traffic.posts)} session requests failed, from "
           f"{min((o.started for o in failed_posts), default=cut) - cut:+.2f} s to "
           f"{max((o.finished for o in failed_posts), default=cut) - cut:+.2f} s (a window of "
           f"{window:.2f} s); {len(failed_gets)} GET failed; {acknowledged} increments "
           f"acknowledged, {CLIENTS - len(problems)} of {CLIENTS} clients with every one of them "
           f"counted once ({skipped} numbers skipped by failed requests that had counted)")
    for problem in problems[:5]:
        report(f"redis primary lost:   {problem}")
    report(f"redis primary lost: failed session requests by cause: {failure_causes(failed_posts)}")
    assert not failed_gets
    assert not problems, "\n".join(problems)
    assert window <= 5.0 and not late
    assert all(o.status in (0, 503) for o in failed_posts)
    LOST["redis"] = (primary, new_primary, after, cut)


# --- 5. what the monitoring says ------------------------------------------------------------------

def wait_firing(fleet, wanted, cut):
    """Every alert in `wanted` firing on mon1's Prometheus (within ALERT_BOUND): their labels,
    and how the wait went, for the report: seen firing at the first look, or how long after
    `cut` (a monotonic time) they all were."""
    def look():
        alerts = firing(fleet)
        return {name: alerts[name] for name in wanted}

    first = look()
    if all(first.values()):
        return first, f"already firing when first looked at, {time.monotonic() - cut:.0f} s"
    alerts = wait_until(look, ALERT_BOUND, 1.0, f"{sorted(wanted)} firing on mon1's Prometheus",
                        holds=lambda found: all(found.values()))
    return alerts, f"firing {time.monotonic() - cut:.0f} s"


def test_the_monitoring_fires_for_the_lost_balancer(fleet, report):
    """mon1's Prometheus: TandemBalancerDown for the balancer that lost its power, after its
    minute (the pair has no spare left); never TandemNoBalancerUp. Waited for before the
    balancer comes back; the failover's alerts are checked after that (TandemRedisDown's minute
    runs meanwhile)."""
    holder, holder_cut = LOST["balancer"]
    alerts, when = wait_firing(fleet, {"TandemBalancerDown"}, holder_cut)
    report(f"alerts: TandemBalancerDown {when} after the balancer's cut (its `for` is 1 min): "
           f"{alerts}")
    assert [labels["host"] for labels in alerts["TandemBalancerDown"]] == [holder], alerts
    assert not firing(fleet)["TandemNoBalancerUp"]


# --- 6. the dead balancer back --------------------------------------------------------------------

def test_dead_balancer_comes_back_as_backup_with_the_current_states(fleet, report):
    """Powered on under load: its HAProxy starts afresh (the state file cleared), copies the
    survivor's maint and drain before its keepalived starts (tandem-lb-take-states.service), and
    its keepalived waits as BACKUP (nopreempt): the address never moves."""
    survivor = holders(fleet)[0]
    dead = next(lb for lb in LBS if lb != survivor)
    with HolderWatch(fleet) as watch, Traffic(fleet, "balancer back",
                                              target=fleet.virtual_address, lb=survivor) as traffic:
        on = time.monotonic()
        fleet.fleet.power_on(dead)
        booted = time.monotonic()
        wait_until(lambda: unit_state(fleet, dead, "keepalived.service")["ActiveState"], 60.0,
                   0.2, f"keepalived on {dead}", holds=lambda state: state == "active")
        running = time.monotonic()
        time.sleep(5.0)
    samples = watch.samples
    failed_gets, failed_posts, _ = traffic.summarize(report)
    guest = fleet.fleet[dead].guest
    taken = guest.show("tandem-lb-take-states.service", "Result",
                       "ExecMainExitTimestampMonotonic")
    keepalived = guest.show("keepalived.service", "ExecMainStartTimestampMonotonic")
    copied = guest.journal("-b", "-u", "tandem-lb-take-states.service", "-o", "cat")
    # This boot's only: in the one before, it held the address.
    vrrp = [line for line in guest.journal("-b", "-u", "keepalived.service", "-o",
                                           "cat").splitlines() if "STATE" in line]
    seen = statuses(fleet, dead)
    moved = sorted({tuple(found) for _, found in samples})
    report(f"balancer back: {dead.split('.')[0]} booted in {booted - on:.1f} s, keepalived "
           f"active {running - on:.1f} s after power-on; took the states "
           f"({taken.get('Result')}): {copied.strip().splitlines()}; keepalived: {vrrp}; its "
           f"HAProxy now {seen}; the address was held by {moved} over "
           f"{len(samples)} samples")
    try:
        assert not failed_gets and not failed_posts
        assert moved == [(survivor,)], moved
        assert taken["Result"] == "success"
        assert 0 < int(taken["ExecMainExitTimestampMonotonic"]) \
            <= int(keepalived["ExecMainStartTimestampMonotonic"])
        assert seen["app2-2"].startswith("MAINT") and seen["app1-2"].startswith("DRAIN"), seen
        assert any("BACKUP" in line for line in vrrp) and not any("MASTER" in line
                                                                  for line in vrrp), vrrp
    finally:
        set_on_every_balancer(fleet, dict.fromkeys(HELD, "ready"))
    for lb in LBS:
        wait_up(fleet, ALL_IDS, lb=lb)


# --- 7. what the monitoring says of the failover --------------------------------------------------

def test_the_monitoring_fires_for_the_failover(fleet, report):
    """mon1's Prometheus: TandemRedisDown for the lost primary (after its minute) and
    TandemRedisPrimaryChanged for the replica promoted (at once, for five minutes); checked
    before the old primary is powered on again."""
    primary, new_primary, _, redis_cut = LOST["redis"]
    alerts, when = wait_firing(fleet, {"TandemRedisDown", "TandemRedisPrimaryChanged"}, redis_cut)
    report(f"alerts: TandemRedisDown and TandemRedisPrimaryChanged {when} after the Redis "
           f"primary's cut (TandemRedisDown's `for` is 1 min): {alerts}")
    assert [labels["host"] for labels in alerts["TandemRedisDown"]] == [primary], alerts
    assert [labels["host"] for labels in alerts["TandemRedisPrimaryChanged"]] == [new_primary], \
        alerts


# --- 8. the Redis primary back --------------------------------------------------------------------

def test_old_primary_comes_back_as_a_replica(fleet, report):
    """Powered on, the old primary comes back as a replica of the new one (its Sentinel and the
    others reconfigure it). test_shrink.py's deploy.yml then leaves it so."""
    primary, new_primary, after, _ = LOST["redis"]
    fleet.fleet.power_on(primary)
    powered_on = time.monotonic()
    role = wait_until(lambda: redis_command(fleet, primary, REDIS_PORT, "ROLE"), 60.0, 0.5,
                      f"{primary} to come back as a replica of {after}",
                      holds=lambda found: found[:2] == ["slave", after]
                      and found[3] == "connected", ignore=(RedisError, OSError))
    report(f"redis primary back: {primary.split('.')[0]} a connected replica of "
           f"{new_primary.split('.')[0]} {time.monotonic() - powered_on:.1f} s after power-on: "
           f"{role[:4]}")
    assert redis_command(fleet, new_primary, REDIS_PORT, "ROLE")[0] == "master"
