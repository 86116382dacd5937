"""The end of the fleet's story (test_fleet.py, then test_ha.py, then this: one fleet for all,
conftest.py): a host removed. app2 deleted from the inventory and deployed under load: its
servers are drained, then put in maint, then dropped, on both balancers: 0 failed requests, its
session clients carry on on app1; then app2 is switched off and nothing notices."""

import time

from tests.multihost.drills import (ALL_IDS, APP1, APP2, IDS, LBS, Traffic, check_counts,
                                    last_instance, prometheus_targets, report_run, require_ok,
                                    statuses, wait_up)


def test_app2_removed_from_the_inventory_is_drained_out_first(fleet, report):
    """app2 deleted from the inventory, deploy.yml under load: the balancers drain app2's
    servers, put them in maint (their sticky clients go to app1, sessions intact), and only then
    reload without them (lb1 watched throughout; both end with app1's alone). Then app2 is
    switched off, which nothing notices."""
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
    report(f"app2 removed: app2's servers went {seen}; answered after maint: {late}; "
           f"{len(on_app2)} session clients were on app2; app2 switched off "
           f"{off - removed:.1f} s after the playbook; HAProxy now {statuses(fleet)}; "
           f"Prometheus scrapes {targets}")
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
