"""HTTPS as deployed: ansible/deploy.yml with the local inventory and the role's defaults (plain
HTTP redirected, a self-signed certificate made on the balancer), into the `target` guest
(conftest.py).

1. :80 answers 308 to HTTPS; :443 speaks HTTP/2 from both instances with Secure cookies; a
   second deployment changes nothing (the self-signed certificate is not made again).
2. A certificate given in the inventory under the same name replaces the self-signed one while
   HTTPS requests arrive, half on new connections, half on kept-alive HTTP/2 ones: 0 failed, no
   reload (the same HAProxy worker serves on), and handshakes get the new certificate.
3. ansible/rolling-restart.yml over HTTPS, under sticky HTTP/2 clients and 100 GET/s: 0 failed,
   and with the sessions in Redis (the redis role switched on, on loopback) every client's count
   goes on 1, 2, 3, ... without a gap, a repeat or a reset on the instance it is moved to, up to
   the count Redis holds. (tests/multihost/ rolls across hosts with Redis on a host of its own.)
"""

import re
import time

from tests.harness import load, tls
from tests.harness.tls import curl, served_fingerprint
from tests.harness.load import PacedLoad, session_post
from tests.harness.redis import check_sessions, session_count
from tests.harness.runtime_api import RuntimeApi
from tests.harness.stack import free_ports
from tests.harness.tls_visitors import NewVisitors

HTTP_URL = "http://127.0.0.1:80"
HTTPS_URL = "https://127.0.0.1:443"
INSTANCES = ("app-1", "app-2")
ADMIN_SOCKET = "/run/haproxy/admin.sock"
# The role's defaults: the redirect on, the self-signed certificate named by the inventory host.
# And the sessions in Redis, on the guest's loopback (the redis role), on a free port rather than
# 6379: the guest's ports are this machine's.
REDIS_PORT = free_ports(1)[0]
DEFAULT_HTTPS = {"tandem_lb_http_redirect": True, "redis_enabled": True, "redis_port": REDIS_PORT}
PORTS = (3001, 3002)  # the instances of ansible/inventories/local
UNITS = tuple(f"tandem@{port}.service" for port in PORTS)
SELF_SIGNED = "/etc/haproxy/tls/self-signed.crt"
PEM_PATH = "/etc/haproxy/tls/tandem-local.pem"
RATE = 100
CLIENTS = 20


def haproxy_worker(target):
    return RuntimeApi(target.guest.path(ADMIN_SOCKET)).worker_pid()


def test_https_deployed_by_default_redirects_and_serves_http2(target, report, tmp_path):
    deployed = target.playbook("deploy.yml", extra_vars=DEFAULT_HTTPS)
    assert deployed.ok, deployed.tail(80)
    assert target.guest.show("redis-server.service", "ActiveState")["ActiveState"] == "active"
    for port in PORTS:
        env = target.guest.run(["cat", f"/etc/tandem/{port}.env"]).stdout
        assert f"TANDEM_SESSION_STORE=redis://127.0.0.1:{REDIS_PORT}/0\n" in env, env
    head = curl("-i", f"{HTTP_URL}/api/whoami")
    report(f"deployed: GET :80 -> {head.splitlines()[0]!r}, "
           f"{re.search(r'^location:.*$', head, re.I | re.M).group(0)!r}")
    assert head.startswith("HTTP/1.1 308"), head
    assert re.search(r"^location: https://127\.0\.0\.1/api/whoami\r?$", head, re.I | re.M)

    ca = tmp_path / "self-signed.crt"
    ca.write_text(target.guest.run(["cat", SELF_SIGNED]).stdout)
    seen = set()
    for number in range(6):
        answer = curl("--http2", "--cacert", str(ca), "-i", "-X", "POST",
                      "-H", "Content-Type: application/json",
                      "-d", f'{{"clientId":"d{number}","requestNum":1}}',
                      f"{HTTPS_URL}/api/session")
        assert answer.startswith("HTTP/2 200"), answer
        seen.add(re.search(r"^x-container-id:\s*(\S+)", answer, re.I | re.M).group(1))
        cookies = re.findall(r"^set-cookie:\s*(.*?)\r?$", answer, re.I | re.M)
        assert len(cookies) == 2 and all("; Secure" in c for c in cookies), cookies
    report(f"HTTPS/2 with the self-signed certificate, verified: answered by {sorted(seen)}")
    assert seen == set(INSTANCES)

    again = target.playbook("deploy.yml", extra_vars=DEFAULT_HTTPS)
    report(f"deployed again: recap {again.recap}")
    assert again.ok and again.recap["changed"] == 0, again.tail(80)


def test_a_new_certificate_is_taken_up_under_load_without_a_reload(target, report, tmp_path):
    old_fingerprint = served_fingerprint(443, server_name="tandem-local")
    new_pem = tls.self_signed_pem("tandem-local", ("tandem-local", "localhost", "127.0.0.1"))
    trusted = tmp_path / "both.crt"
    trusted.write_text(target.guest.run(["cat", SELF_SIGNED]).stdout
                       + tls.certificate_part(new_pem))
    worker = haproxy_worker(target)
    fresh = NewVisitors(443, trusted, rate=RATE // 2, seconds=600, server_name="tandem-local")
    kept = PacedLoad(f"{HTTPS_URL}/api/whoami", rate=RATE // 2, duration=600, ca_file=trusted,
                     http2=True)
    # At most 600 s: stopped as soon as the playbook has returned (stop_loads).
    fresh.start()
    kept.start()
    time.sleep(1.0)
    started = time.monotonic()
    run = target.playbook("deploy.yml", extra_vars={
        **DEFAULT_HTTPS,
        "tandem_lb_tls_certificates": [{"name": "tandem-local", "pem": new_pem}]})
    took = time.monotonic() - started
    time.sleep(1.0)
    outcomes = stop_loads(kept)
    outcomes += fresh.stop()
    failed = [o for o in outcomes if not isinstance(o, tuple) and not o.ok] \
        + fresh.failures()
    new_fingerprint = served_fingerprint(443, server_name="tandem-local")
    on_disk = tls.fingerprint(target.guest.run(["cat", PEM_PATH]).stdout)
    report(f"rotation by deploy.yml ({took:.1f} s, recap {run.recap}) under {len(outcomes)} "
           f"HTTPS requests: {len(failed)} failed; HAProxy worker {worker} -> "
           f"{haproxy_worker(target)}; served {old_fingerprint[:17]}... -> "
           f"{new_fingerprint[:17]}...")
    for failure in failed[:5]:
        report(f"  failed: {failure}")
    assert run.ok, run.tail(80)
    assert "Put the new certificate in service" in run.output
    assert new_fingerprint == on_disk == tls.fingerprint(new_pem) != old_fingerprint
    assert haproxy_worker(target) == worker, "HAProxy was reloaded"
    # The new connections got the old certificate before the deployment and the new one after.
    assert fresh.certificates[0] == old_fingerprint
    assert fresh.certificates_after(started + took) == {new_fingerprint}
    assert not failed


def stop_loads(*loads):
    """Every outcome of paced loads stopped now (what is in flight finishes)."""
    return [outcome for paced in loads for outcome in paced.stop()]


def test_rolling_restart_over_https_fails_nothing(target, report, tmp_path):
    ca = tmp_path / "served.crt"
    ca.write_text(tls.certificate_part(target.guest.run(["cat", PEM_PATH]).stdout))
    url = f"{HTTPS_URL}/api/session"
    clients = [load.Client(name=f"tls-{n}", ca_file=ca, http2=True) for n in range(CLIENTS)]
    gets = PacedLoad(f"{HTTPS_URL}/api/whoami", rate=RATE, duration=600, ca_file=ca,
                     http2=True)
    pids = target.guest.main_pids(UNITS)
    try:
        gets.start()
        with load.Rounds(clients, lambda client, n: session_post(url, client.name, n + 1),
                         0.2) as rounds:
            time.sleep(2.0)
            run = target.playbook("rolling-restart.yml", extra_vars=DEFAULT_HTTPS)
            time.sleep(1.0)
            rounds.stop()
        outcomes = stop_loads(gets)
        restarted = target.guest.main_pids(UNITS)
        problems, moved = check_sessions(
            clients, lambda session_id: session_count(REDIS_PORT, session_id))
    finally:
        for client in clients:
            client.close()
    posts = [o for client in clients for o in client.outcomes]
    failed = [o for o in posts + outcomes if not o.ok]
    report(f"rolling-restart.yml over HTTPS ({run.seconds:.1f} s, exit {run.returncode}) under "
           f"{len(posts)} POST from {CLIENTS} sticky HTTP/2 clients and {len(outcomes)} GET: "
           f"{len(failed)} failed; {moved} clients moved to the other instance and went on; "
           f"{CLIENTS - len(problems)} of {CLIENTS} with every count exactly once and equal to "
           f"Redis's; main pids {pids} -> {restarted}")
    for failure in failed[:5]:
        report(f"  failed: {failure.request.method} status {failure.status} "
               f"{failure.error or failure.body[:100]!r}")
    assert run.ok, run.tail(80)
    assert {o.http_version for o in posts + outcomes if o.ok} == {"2"}
    assert not failed
    assert all(restarted[unit] not in (0, pids[unit]) for unit in UNITS), restarted
    assert not problems, "\n".join(problems)
    assert moved == CLIENTS, "every client's instance was restarted under it"
