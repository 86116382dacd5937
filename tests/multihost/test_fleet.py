"""Beyond one host: ansible/inventories/example deployed onto eight real hosts on this machine
(systemd guests on a private bridge, reached over SSH: tests/multihost/conftest.py), and drills
under load through the balancer:

0. every host reaches its subnet and nothing else, and Ansible's key gets in;
1. deploy.yml from scratch with app2 not yet in the inventory: two instances, sessions in Redis;
2. app2 added to the inventory and deployed under load: its servers join in maint and enter
   rotation once their instances answer: 0 failed requests;
3. app1 powered off at once (both its instances): 0 failed GETs, its session clients carry on on
   app2 with their counts; powered on, its instances come back into rotation by themselves;
4. rolling-restart.yml across both app hosts (one host after the other, one instance at a time):
   0 failed requests, never fewer than three of four instances in rotation;
5. the same for an upgrade (deploy.yml --limit tandem_app with the next version);
6. four instances against two on the CPU-bound route, with the ceiling the two cores allow.

The story goes on on the same fleet in test_ha.py (the balancer pair and Redis behind Sentinel),
and ends in test_shrink.py (app2 deleted from the inventory and drained out first).

The load, from this machine through the bridge: RATE GET /api/whoami per second and CLIENTS sticky
clients (each its own cookie jar) sending POST /api/session, all over HTTPS to the name of the
inventory's certificate, as deployed (plain HTTP is redirected). HAProxy's view of every server
is read every 100 ms. The tests run in file order.
"""

import os
import pathlib
import re
import statistics
import subprocess
import time

from bench.scaling.figures import cpu_ceiling
from tests.harness import load, procstat, wrk
from tests.harness.load import Request
from tests.harness.waiting import wait_until
from tests.multihost.drills import (ALL_IDS, APP1, APP2, BACKEND, CLIENTS, IDS, INSTANCES, LB,
                                    LBS, MONITORING, REDIS_HOSTS, SENTINEL_PORT, Traffic, address,
                                    check_counts, guest_get, last_instance, lb_api,
                                    prometheus_targets, report_run, require_ok, site_url,
                                    statuses, tls, wait_up)
from tests.system.deployment import build_next_package, expected_version

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
# The CPU-bound comparison: each request costs about this much CPU on an instance's worker (heavy
# enough that one client address stays below HAProxy's per-source request rate, 300/s, when the
# two cores are busy), measured for this long with this many connections after a warm-up.
CPU_TARGET_MS = 10.0
CPU_SECONDS = 8
CPU_WARMUP = 2
CPU_CONNECTIONS = 16


# --- the deployment's view (more in drills.py) ----------------------------------------------------

def unit_pids(fleet, host):
    ids = {f"tandem@{instance['port']}.service": instance["id"] for instance in INSTANCES[host]}
    return {ids[unit]: pid for unit, pid in fleet.fleet[host].guest.main_pids(ids).items()}


# --- 0. the fleet ---------------------------------------------------------------------------------

def test_each_host_reaches_the_bridge_subnet_and_nothing_else(fleet, report):
    """One guest per inventory host, each in its own network namespace: its routing tables hold
    the bridge's subnet alone (no default route, no IPv6), an outside address is unreachable,
    and Ansible's key gets in over SSH at the host's address."""
    booted = fleet.fleet
    report(f"fleet up in {booted.timings['up']:.1f} s: "
           + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in booted.timings.items()))
    for host in booted.hosts.values():
        main = booted.check_isolated(host)
        default = host.run(["ip", "route", "show", "default"]).stdout.strip()
        hostname = host.run(["hostname"]).stdout.strip()
        over_ssh = subprocess.run(booted.ssh_argv(host.name, "hostname"), capture_output=True,
                                  text=True, timeout=30, check=False)
        report(f"{host.short} ({host.address}): routes {main}; default route: "
               f"{default or 'none'}; ssh root@{host.address} hostname -> "
               f"{over_ssh.stdout.strip()!r}")
        assert main == [f"10.77.0.0/24 dev host0 proto kernel scope link src {host.address}"]
        assert default == ""
        assert over_ssh.returncode == 0 and over_ssh.stdout.strip() == hostname == host.short


# --- 1. from scratch, without app2 ----------------------------------------------------------------

def test_deploy_from_scratch_without_app2(fleet, report):
    """deploy.yml with app2 not in the inventory: HAProxy on lb1 balances app1's two instances,
    which keep their sessions in Redis on redis1; app2 is left alone."""
    run = fleet.playbook("deploy.yml", without={APP2})
    report_run(report, "first deploy (no app2)", run)
    require_ok(run)
    assert APP2 not in run.recaps()
    wait_up(fleet, IDS[APP1])
    # One request at a time, each a new cookieless visitor: leastconn takes the servers in turn.
    sequence = [load.parallel([Request("GET", site_url(fleet, "/api/whoami"))],
                              **tls(fleet))[0].instance for _ in range(6)]
    env = fleet.fleet[APP1].run(["cat", f"/etc/tandem/{INSTANCES[APP1][0]['port']}.env"]).stdout
    store = re.search(r"^TANDEM_SESSION_STORE=(.*)$", env, re.MULTILINE).group(1)
    bind = re.search(r"^TANDEM_BIND=(.*)$", env, re.MULTILINE).group(1)
    app2_package = fleet.fleet[APP2].run(["dpkg-query", "-W", "tandem"], check=False)
    redirect = load.parallel([Request("GET", f"http://{fleet.site}/api/whoami")],
                             resolve=(f"{fleet.site}:80:{address(fleet, LB)}",))[0]
    report(f"first deploy: HAProxy {statuses(fleet)}; one request at a time over HTTPS: "
           f"{' '.join(sequence)}; plain HTTP answered {redirect.status} to "
           f"{redirect.headers.get('location')}; app1's TANDEM_BIND {bind}, "
           f"TANDEM_SESSION_STORE "
           f"{store.replace(fleet.secrets['vault_redis_password'], '<password>')}; app2: "
           f"{'tandem not installed' if app2_package.returncode else app2_package.stdout}")
    assert set(sequence) == set(IDS[APP1])
    assert redirect.status == 308
    assert bind == address(fleet, APP1)
    # Several Redis hosts: the instances find the primary through the three Sentinels.
    sentinels = ",".join(f"{address(fleet, host)}:{SENTINEL_PORT}" for host in REDIS_HOSTS)
    assert store == f"sentinel://:{fleet.secrets['vault_redis_password']}@{sentinels}/tandem/0"
    assert app2_package.returncode != 0


# --- 2. a host added ------------------------------------------------------------------------------

def test_app2_added_to_the_inventory_joins_under_load(fleet, report):
    """app2 back in the inventory, deploy.yml under load: lb1 adds app2's servers in maint before
    its reload, the tandem_app plays install and start app2's instances and put them in
    rotation once they answer. 0 failed requests; the sessions go on."""
    wait_up(fleet, IDS[APP1])
    with Traffic(fleet, "app2 joins") as traffic:
        run = fleet.playbook("deploy.yml")
    failed_gets, failed_posts, in_rotation = traffic.summarize(report)
    report_run(report, "app2 joins", run)
    seen = {server: traffic.monitor.states_seen(server) for server in IDS[APP2]}
    served = {server: traffic.answered_by(server) for server in IDS[APP2]}
    report(f"app2 joins: app2's servers went {seen}; answered {served} requests")
    require_ok(run)
    assert not failed_gets and not failed_posts
    for server in IDS[APP2]:
        # In HAProxy from the start in maint, never in rotation before its instance answered.
        assert seen[server][0] == "MAINT" and seen[server][-1] == "UP", seen
        assert served[server] > 0
    assert min(in_rotation) >= 2 and in_rotation[-1] == 4
    check_counts(fleet, report, traffic)
    wait_up(fleet, ALL_IDS)
    targets = wait_until(lambda: prometheus_targets(fleet), 10, 0.5, "Prometheus's targets",
                         holds=lambda found: found == sorted(ALL_IDS))
    report(f"app2 joins: Prometheus on {MONITORING.split('.')[0]} scrapes {targets}")


# --- 3. a host lost -------------------------------------------------------------------------------

def test_app1_powered_off_under_load(fleet, report):
    """app1's power cut: its link goes down, then every process is killed (Fleet.power_off):
    nothing drains, nothing answers or resets a connection. HAProxy takes its two instances out,
    0 GET fails (one in flight on app1 is sent to app2 after timeout server), and the session
    clients it served carry on on app2 with their counts. A POST in flight on app1 at that
    moment, or sent on an idle connection to it before it is out, may fail (it is never
    replayed: it may have counted). Powered on, app1 boots, its instances start (enabled) and
    HAProxy's checks put them back."""
    wait_up(fleet, ALL_IDS)
    with Traffic(fleet, "app1 powered off") as traffic:
        on_app1 = [client for client in traffic.clients if last_instance(client) in IDS[APP1]]
        cut = time.monotonic()
        fleet.fleet.power_off(APP1, force=True)
        off = time.monotonic()
        time.sleep(8.0)
        powered_on = time.monotonic()
        fleet.fleet.power_on(APP1)
        booted = time.monotonic()
        wait_up(fleet, ALL_IDS, timeout=60.0)
        back = time.monotonic()
        time.sleep(2.0)
    failed_gets, failed_posts, in_rotation = traffic.summarize(report)
    monitor = traffic.monitor
    down = {server: monitor.first_time(server, lambda s: s.startswith("DOWN"), after=cut)
            for server in IDS[APP1]}
    up = {server: monitor.first_time(server, lambda s: s == "UP", after=powered_on)
          for server in IDS[APP1]}
    report(f"app1 powered off: {len(on_app1)} session clients were on app1; its guest was gone "
           f"{off - cut:.2f} s after the command; HAProxy had app1's servers DOWN after "
           + ", ".join(f"{s} {(t - cut) if t else float('nan'):.2f} s" for s, t in down.items())
           + f"; powered on after {powered_on - cut:.1f} s, booted (ssh answering) in "
           f"{booted - powered_on:.1f} s, every instance UP again "
           + ", ".join(f"{s} {(t - powered_on) if t else float('nan'):.2f} s" for s, t in up.items())
           + f" after power-on (all four UP {back - powered_on:.1f} s after it)")
    after_cut = {client.name: sorted({o.instance for o in client.outcomes
                                      if o.ok and cut < o.started < powered_on})
                 for client in on_app1}
    report(f"app1 powered off: its clients were answered, until app1 was back, by "
           f"{sorted({i for found in after_cut.values() for i in found})}")
    assert not failed_gets
    posts_on_app1 = {client.name for client in on_app1}
    assert all(f.request.url.endswith("/api/session") for f in failed_posts)
    # Only the POSTs in flight on app1 when it went: at most one per client it served.
    assert len(failed_posts) <= len(on_app1)
    assert all(cut - 1.0 <= f.started <= off + 5.0 for f in failed_posts), failed_posts
    failed_clients = {client.name for client in traffic.clients
                      for o in client.outcomes if not o.ok}
    assert failed_clients <= posts_on_app1
    assert on_app1, "some session clients were on app1 before it went"
    for name, answered in after_cut.items():
        assert answered and set(answered) <= set(IDS[APP2]), (name, answered)
    assert all(down.values()) and all(up.values())
    assert min(in_rotation) >= 2
    check_counts(fleet, report, traffic, strict=False)


# --- 4 and 5. rolls across hosts ------------------------------------------------------------------

def check_roll(fleet, report, name, traffic, run, pids_before):
    failed_gets, failed_posts, in_rotation = traffic.summarize(report)
    report_run(report, name, run)
    out = {server: traffic.monitor.first_time(server, lambda s: s.startswith("MAINT"))
           for server in ALL_IDS}
    order = sorted((server for server in ALL_IDS if out[server]), key=out.get)
    pids_after = {host: unit_pids(fleet, host) for host in (APP1, APP2)}
    report(f"{name}: taken out in the order {' '.join(order)} (at "
           + ", ".join(f"+{out[s] - traffic.began:.1f} s" for s in order)
           + f"); main pids {pids_before} -> {pids_after}")
    require_ok(run)
    assert not failed_gets and not failed_posts
    # One instance at a time, app1's two, then app2's: never fewer than three of four in rotation.
    assert min(in_rotation) >= 3
    assert order == ALL_IDS
    for host in (APP1, APP2):
        for server in IDS[host]:
            assert pids_after[host][server] not in (0, pids_before[host][server])
    moved = check_counts(fleet, report, traffic)
    assert moved == CLIENTS, "every client's instance was restarted under it"
    wait_up(fleet, ALL_IDS)


def test_rolling_restart_across_both_app_hosts(fleet, report):
    """rolling-restart.yml under load: serial per host, one instance at a time through lb1."""
    wait_up(fleet, ALL_IDS)
    pids = {host: unit_pids(fleet, host) for host in (APP1, APP2)}
    with Traffic(fleet, "rolling restart") as traffic:
        run = fleet.playbook("rolling-restart.yml")
    check_roll(fleet, report, "rolling restart", traffic, run, pids)


def test_upgrade_across_both_app_hosts(fleet, report):
    """deploy.yml with the next version under load, limited to the tandem_app hosts as an
    operator rolling out a package does (the plays of the Redis and monitoring hosts have
    nothing to do for it): the package on every tandem_app host, then the same roll; every
    instance reports the new version."""
    deb, version, seconds = build_next_package()
    report(f"upgrade: built {deb.name} in {seconds:.1f} s")
    wait_up(fleet, ALL_IDS)
    pids = {host: unit_pids(fleet, host) for host in (APP1, APP2)}
    with Traffic(fleet, "upgrade") as traffic:
        run = fleet.playbook("deploy.yml", "--limit", "tandem_app",
                             extra_vars={"tandem_app_package": str(deb)})
    versions = {instance["id"]: guest_get(
        fleet, host, f"http://{address(fleet, host)}:{instance['port']}/health")["version"]
        for host, instances in INSTANCES.items() for instance in instances}
    installed = {host.split(".")[0]: fleet.fleet[host].run(
        ["dpkg-query", "-W", "-f=${Version}", "tandem"]).stdout for host in (*LBS, APP1, APP2)}
    report(f"upgrade: {expected_version()} -> {version}: installed {installed}, /health {versions}")
    check_roll(fleet, report, "upgrade", traffic, run, pids)
    # The limit kept the run to the hosts that carry the package: both balancers (their HAProxy
    # and keepalived checked too) and the application hosts, not Redis's or the monitoring's.
    assert set(run.recaps()) == {*LBS, APP1, APP2}
    assert set(versions.values()) == {version}
    assert set(installed.values()) == {version}
    # The release every later deployment names, as an operator's would.
    fleet.release = deb


# --- 6. four instances against two ----------------------------------------------------------------

def calibrate(fleet):
    """The iterations of /api/load-test that cost CPU_TARGET_MS, from the processingTime (ms)
    the instances report for a probe."""
    probe = 1_000_000
    times = []
    for _ in range(7):
        outcome = load.parallel([Request("GET", site_url(
            fleet, f"/api/load-test?iterations={probe}"))], **tls(fleet))[0]
        assert outcome.ok, (outcome.status, outcome.error, outcome.body[:200])
        times.append(float(outcome.json()["processingTime"]))
    return max(1, round(probe * CPU_TARGET_MS / statistics.median(times[2:])))


def served(fleet):
    """Requests each server has been sent so far (stot)."""
    return {row["svname"]: int(row["stot"]) for row in lb_api(fleet).show_stat()
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")}


def cpu_phase(fleet, iterations, workdir, name):
    """wrk on the CPU-bound route through lb1 (HTTPS), after a warm-up: requests/s, p99, errors,
    and the CPU used by the serving hosts (lb1, app1, app2: every process of theirs) and wrk."""
    url = f"https://{address(fleet, LB)}"
    script = REPO_ROOT / "bench/wrk-load-test.lua"
    wrk.run(url, script, connections=CPU_CONNECTIONS, seconds=CPU_WARMUP,
            script_args=[iterations], log_path=workdir / f"wrk-{name}-warmup.txt")
    guests = [fleet.fleet[host].guest for host in (LB, APP1, APP2)]
    split_before = served(fleet)
    cpu_before = sum(guest.cpu_seconds() for guest in guests)
    busy_before = procstat.machine_busy_ticks()
    result = wrk.run(url, script, connections=CPU_CONNECTIONS, seconds=CPU_SECONDS, latency=True,
                     script_args=[iterations], log_path=workdir / f"wrk-{name}.txt")
    busy = (procstat.machine_busy_ticks() - busy_before) / procstat.CLK_TCK
    hosts_cpu = sum(guest.cpu_seconds() for guest in guests) - cpu_before
    split_after = served(fleet)
    line = result.line("WRK-JSON")
    requests, seconds = line["requests"], line["duration_us"] / 1e6
    return {"rps": requests / seconds, "requests": requests, "seconds": seconds,
            "p99_ms": line["latency_us"]["p99"] / 1000, "errors": sum(line["errors"].values()),
            "hosts_cpu": hosts_cpu, "wrk_cpu": result.cpu_seconds, "machine_cpu": busy,
            "total_us": (hosts_cpu + result.cpu_seconds) * 1e6 / max(requests, 1),
            "split": {s: split_after[s] - split_before.get(s, 0) for s in split_after}}


def test_four_instances_against_two_on_the_cpu_bound_route(fleet, report):
    """The CPU-bound route through lb1 with app2's instances in maint (two instances, app1's),
    then with all four: on two cores four instances cannot double two's throughput. Printed side
    by side: the measured ratio and the ceiling the cores allow (bench/scaling's: every core busy
    at the CPU per request measured with four: instances, HAProxy, wrk), and how close to it the
    four come."""
    wait_up(fleet, ALL_IDS)
    api = lb_api(fleet)
    iterations = calibrate(fleet)
    phases = {}
    try:
        for server in IDS[APP2]:
            api.set_server_state(BACKEND, server, "maint")
        phases["two"] = cpu_phase(fleet, iterations, fleet.workdir, "two")
    finally:
        for server in IDS[APP2]:
            api.set_server_state(BACKEND, server, "ready")
    wait_up(fleet, ALL_IDS)
    phases["four"] = cpu_phase(fleet, iterations, fleet.workdir, "four")
    two, four = phases["two"], phases["four"]
    cpus = os.cpu_count() or 1
    ratio = four["rps"] / two["rps"]
    ceiling = cpu_ceiling(four["total_us"], two["rps"], four["rps"], cpus=cpus)
    for name, phase in phases.items():
        report(f"cpu-bound, {name} instances: {phase['rps']:.1f} requests/s ({phase['requests']} "
               f"in {phase['seconds']:.1f} s, {CPU_CONNECTIONS} connections), p99 "
               f"{phase['p99_ms']:.1f} ms, {phase['errors']} errors; split {phase['split']}; CPU "
               f"{phase['total_us'] / 1000:.2f} ms per request (lb1+app1+app2 "
               f"{phase['hosts_cpu']:.2f} s, wrk {phase['wrk_cpu']:.2f} s; the whole machine "
               f"{phase['machine_cpu']:.2f} s of {cpus * phase['seconds']:.1f})")
    report(f"cpu-bound ({iterations} iterations, about {CPU_TARGET_MS:g} ms of CPU each): four "
           f"instances / two = {ratio:.3f}; ceiling the {cpus} cores allow: "
           f"{ceiling['ceiling_ratio']:.3f} ({ceiling['ceiling_rps']:.1f} requests/s at "
           f"{ceiling['total_cpu_us_per_request'] / 1000:.2f} ms of CPU per request); four "
           f"instances reach {ceiling['machine_used']:.1%} of that ceiling, two reached "
           f"{two['rps'] / ceiling['ceiling_rps']:.1%}")
    assert two["errors"] == 0 and four["errors"] == 0
    assert {s for s, n in two["split"].items() if n} == set(IDS[APP1])
    assert all(four["split"][s] >= 0.1 * four["requests"] for s in ALL_IDS), four["split"]
    # Two cores: four instances do not double two; and nothing beats the cores' ceiling.
    assert ratio < 2.0
    assert ratio <= ceiling["ceiling_ratio"] * 1.05
    assert ratio >= 0.9
    assert ceiling["machine_used"] >= 0.7
