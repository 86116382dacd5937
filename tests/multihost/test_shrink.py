"""The end of the fleet's story (test_fleet.py, then test_ha.py, then this: one fleet for all,
conftest.py): a host removed. app2 deleted from the inventory and deployed under load: its
servers are drained, then put in maint, then dropped, on both balancers: 0 failed requests, its
session clients carry on on app1; then app2 is switched off and nothing notices.

It is also the first deploy.yml after test_ha.py's failovers (the address moved to lb2, lb1
powered off and on, Redis failed over to another primary): it changes what the removal needs and
nothing else (app2's servers out of both balancers, mon1's scrape targets), and the primary stays
the one the Sentinels name (the roles follow whichever node they name rather than fight them)."""

import time

from tests.multihost.drills import (ALL_IDS, APP1, APP2, IDS, LBS, MONITORING, REDIS_HOSTS,
                                    REDIS_PORT, Traffic, changed_tasks, check_counts,
                                    last_instance, named_primary, prometheus_targets,
                                    redis_command, redis_host_at, report_run, require_ok,
                                    statuses, wait_up)

# What removing app2 changes, and all it changes: on each balancer its servers drained, put in
# maint, then the configuration without them and HAProxy's reload; on mon1 the scrape targets.
REMOVAL_CHANGES = {
    lb: ["tandem_lb : Drain the leaving servers, so that new clients go to the others",
         "tandem_lb : Put the leaving servers in maintenance, so that their sticky clients go to "
         "the others",
         "tandem_lb : Render the HAProxy configuration from haproxy/haproxy.cfg.j2, checked by "
         "haproxy -c first",
         "tandem_lb : Reload HAProxy"] for lb in LBS}
REMOVAL_CHANGES[MONITORING] = [
    "tandem_monitoring : Render Prometheus's configuration, checked by promtool first",
    "tandem_monitoring : Reload Prometheus"]


def test_app2_removed_from_the_inventory_is_drained_out_first(fleet, report):
    """app2 deleted from the inventory, deploy.yml under load: the balancers drain app2's
    servers, put them in maint (their sticky clients go to app1, sessions intact), and only then
    reload without them (lb1 watched throughout; both end with app1's alone). Then app2 is
    switched off, which nothing notices. Nothing else changes on any host, the Redis hosts and
    app1 included (changed=0 there), though the balancers and Redis failed over since the last
    run."""
    wait_up(fleet, ALL_IDS)
    primary = {named_primary(fleet, host) for host in REDIS_HOSTS}
    assert len(primary) == 1 and None not in primary, primary
    primary = primary.pop()
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
    changed = changed_tasks(run)
    report(f"app2 removed: app2's servers went {seen}; answered after maint: {late}; "
           f"{len(on_app2)} session clients were on app2; app2 switched off "
           f"{off - removed:.1f} s after the playbook; HAProxy now {statuses(fleet)}; "
           f"Prometheus scrapes {targets}; tasks changed {changed}")
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
    assert changed == REMOVAL_CHANGES, changed
    roles = {host: redis_command(fleet, host, REDIS_PORT, "ROLE")[:2] for host in REDIS_HOSTS}
    named = {named_primary(fleet, host) for host in REDIS_HOSTS}
    report(f"app2 removed: the Sentinels named {primary} before the playbook and {named} after; "
           f"Redis roles after: {roles}")
    assert named == {primary}
    primary_host = redis_host_at(fleet, primary)
    assert roles[primary_host][0] == "master", roles
    for host in REDIS_HOSTS:
        if host != primary_host:
            assert roles[host] == ["slave", primary], roles
