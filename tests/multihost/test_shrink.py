"""The end of the fleet's story (test_fleet.py, then test_ha.py, then this: one fleet for all,
conftest.py): a host removed. app2 deleted from the inventory and deployed under load: its
servers are drained, then put in maint, then dropped, on both balancers: 0 failed requests, its
session clients carry on on app1; then app2 is switched off and nothing notices.

It is also the first deploy.yml after test_ha.py's failovers: it changes nothing on the Redis
hosts or on app1, and the primary stays the one the Sentinels promoted (the roles follow whichever
node the Sentinels name rather than fight them)."""

import time

from tests.multihost.drills import (ALL_IDS, APP1, APP2, IDS, LBS, REDIS_HOSTS, REDIS_PORT,
                                    Traffic, address, check_counts, last_instance, named_primary,
                                    prometheus_targets, redis_command, report_run, require_ok,
                                    statuses, wait_up)


def test_app2_removed_from_the_inventory_is_drained_out_first(fleet, report):
    """app2 deleted from the inventory, deploy.yml under load: the balancers drain app2's
    servers, put them in maint (their sticky clients go to app1, sessions intact), and only then
    reload without them (lb1 watched throughout; both end with app1's alone). Then app2 is
    switched off, which nothing notices. The Redis hosts and app1, which the removal does not
    concern, are left as they are (changed=0) though Redis failed over since the last run."""
    wait_up(fleet, ALL_IDS)
    with Traffic(fleet, "app2 removed") as traffic:
        on_app2 = [client for client in traffic.clients if last_instance(client) in IDS[APP2]]
        run = fleet.playbook("deploy.yml", without={APP2})
        removed = time.monotonic()
        fleet.fleet.power_off(APP2)
        off = time.monotonic()
    failed_gets, failed_posts, in_rotation = traffic.summarize(report)
    report_run(report, "app2 removed", run)
    seen = {server: traffic.monitor.states_seen(server) for server in IDS[APP2]}
    maint = {server: traffic.monitor.first_time(server, lambda s: s.startswith("MAINT"))
             for server in IDS[APP2]}
    late = {server: traffic.answered_by(server, after=maint[server] + 0.5)
            for server in IDS[APP2] if maint[server]}
    targets = prometheus_targets(fleet)
    roles = {host.split(".")[0]: redis_command(fleet, host, REDIS_PORT, "ROLE")[:2]
             for host in REDIS_HOSTS}
    named = {named_primary(fleet, host) for host in REDIS_HOSTS}
    untouched = {host.split(".")[0]: recap["changed"] for host, recap in run.recaps().items()
                 if host in (APP1, *REDIS_HOSTS)}
    report(f"app2 removed: app2's servers went {seen}; answered after maint: {late}; "
           f"{len(on_app2)} session clients were on app2; app2 switched off "
           f"{off - removed:.1f} s after the playbook; HAProxy now {statuses(fleet)}; "
           f"Prometheus scrapes {targets}; changed on app1 and the Redis hosts: {untouched}; "
           f"Redis roles after it {roles}, the Sentinels name {named}")
    require_ok(run)
    assert APP2 not in run.recaps()
    assert not failed_gets and not failed_posts
    for server in IDS[APP2]:
        states = seen[server]
        # Drained, then in maint, then dropped by the reload: in that order.
        assert "DRAIN" in states and "MAINT" in states and states[-1] == "", states
        assert states.index("DRAIN") < states.index("MAINT") < len(states) - 1, states
        assert late.get(server) == 0
    assert min(in_rotation) >= 2
    for lb in LBS:
        assert set(statuses(fleet, lb)) == set(IDS[APP1]), lb
    assert on_app2
    for client in on_app2:
        assert last_instance(client) in IDS[APP1]
    check_counts(fleet, report, traffic)
    assert targets == sorted(IDS[APP1])
    # After test_ha.py's failover the primary is not the inventory's first Redis host, and
    # deploy.yml neither wrote a Redis file nor moved the primary back.
    assert len(untouched) == 1 + len(REDIS_HOSTS) and not any(untouched.values()), untouched
    assert len(named) == 1, named
    primary = next(host for host in REDIS_HOSTS if address(fleet, host) in named)
    assert primary != REDIS_HOSTS[0], roles
    for host in REDIS_HOSTS:
        expected = "master" if host == primary else "slave"
        assert roles[host.split(".")[0]][0] == expected, roles
