"""HTTPS and HTTP/2 at the front (haproxy/README.md, "TLS"): what a client sees over HTTPS, what
TLS refuses, the redirect from plain HTTP, and failover, stickiness, a rolling restart and a
certificate rotation over HTTPS without a failed request.

The stack serves HTTPS on a port of its own with a self-signed ECDSA certificate that the clients
here trust (stack.ca_file), so every request is verified as a browser's would be.
"""

import re
import signal
import subprocess
import time

from tests.harness import load, tls
from tests.harness.tls import curl, served_fingerprint
from tests.harness.load import PacedLoad, session_post
from tests.harness.redis import check_sessions
from tests.harness.roll import roll_instance
from tests.harness.runtime_api import StatusMonitor, is_down, is_up
from tests.harness.stack import ONE_ADDRESS_CROWD
from tests.harness.tandemctl import Tandemctl
from tests.harness.tls_visitors import NewVisitors

CLIENTS = 20
ROUND_PAUSE = 0.2  # seconds between two rounds of one POST per client: 100 requests/s
GET_RATE = 100  # requests per second beside the sticky clients


def set_cookies(head, name):
    """The Set-Cookie values for cookie `name` in a response head."""
    return [line.split(":", 1)[1].strip() for line in head.splitlines()
            if line.lower().startswith("set-cookie:")
            and line.split(":", 1)[1].strip().startswith(f"{name}=")]


def attributes(cookie):
    """A Set-Cookie value's attributes, lower-cased, without their values' case."""
    return {part.strip().lower() for part in cookie.split(";")[1:]}


def handshake(port, *args):
    """(accepted, protocol, cipher) of an `openssl s_client` handshake with the given options;
    a refusal must be the server's: its alert (handshake failure, protocol version) is in
    openssl's stderr, not a complaint of the client's own."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}",
                             "-servername", "localhost", *args],
                            input="", capture_output=True, text=True, timeout=20, check=False)
    # "New, TLSv1.3, Cipher is TLS_AES_256_GCM_SHA384"; "New, (NONE), Cipher is (NONE)" when
    # the server refused.
    summary = re.search(r"^New, (\S+), Cipher is (\S+)", result.stdout, re.MULTILINE)
    protocol, cipher = summary.groups() if summary else ("", "")
    accepted = result.returncode == 0 and cipher not in ("", "(NONE)")
    refused_by_server = not accepted and re.search(
        r"alert (handshake failure|protocol version|insufficient security)", result.stderr)
    return accepted, protocol, cipher, result.stderr.strip(), bool(refused_by_server)


def test_https_and_http2_reach_both_instances_with_secure_cookies(make_stack, report):
    """curl --http2 over verified TLS: HTTP/2 is negotiated; both instances answer; the session
    cookie (set by the instance, which learnt the scheme from X-Forwarded-Proto) and the
    stickiness cookie (set by HAProxy) are Secure, HttpOnly and SameSite=Lax. Over plain HTTP the
    same cookies are not Secure, whatever X-Forwarded-Proto the client claims."""
    stack = make_stack(instances=2)
    session = stack.https_url("/api/session")
    seen = {}
    for number in range(1, 9):
        head = curl("--http2", "--cacert", str(stack.ca_file), "-i", "-X", "POST",
                    "-H", "Content-Type: application/json",
                    "-d", f'{{"clientId":"tls-{number}","requestNum":1}}', session)
        status_line = head.splitlines()[0]
        assert status_line.startswith("HTTP/2 200"), head
        instance = re.search(r"^x-container-id:\s*(\S+)", head, re.I | re.M).group(1)
        seen.setdefault(instance, head)
    assert set(seen) == set(stack.instances), f"answered by {set(seen)} only"
    for instance, head in seen.items():
        [session_cookie] = set_cookies(head, "tandem_session")
        [sticky] = set_cookies(head, stack.variables["tandem_lb_cookie_name"])
        report(f"HTTPS/2 from {instance}: Set-Cookie {session_cookie!r}; {sticky!r}")
        for cookie in (session_cookie, sticky):
            assert {"secure", "httponly", "samesite=lax"} <= attributes(cookie), cookie
        assert sticky.startswith(f"{stack.variables['tandem_lb_cookie_name']}={instance};")
        assert re.search(r"^x-request-id:\s*\S+", head, re.I | re.M), head

    plain = curl("-i", "-X", "POST", "-H", "Content-Type: application/json",
                 "-H", "X-Forwarded-Proto: https",
                 "-d", '{"clientId":"plain","requestNum":1}', stack.url("/api/session"))
    assert plain.splitlines()[0].startswith("HTTP/1.1 200"), plain
    [session_cookie] = set_cookies(plain, "tandem_session")
    [sticky] = set_cookies(plain, stack.variables["tandem_lb_cookie_name"])
    report(f"plain HTTP claiming X-Forwarded-Proto: https: {session_cookie!r}; {sticky!r}")
    assert "secure" not in attributes(session_cookie), session_cookie
    assert "secure" not in attributes(sticky) and "samesite=lax" in attributes(sticky), sticky


def test_old_protocols_and_weak_ciphers_are_refused(make_stack, report):
    """TLS 1.0 and 1.1, and TLS 1.2 suites without forward secrecy or with CBC, get no
    handshake; TLS 1.2 with ECDHE-ECDSA-AES128-GCM and TLS 1.3 do (the controls); a TLS 1.2
    handshake gets no session ticket."""
    stack = make_stack(instances=1, rsa_certificate=True)
    port = stack.https_port
    low = "DEFAULT:@SECLEVEL=0"
    cases = {
        "TLS 1.0": (False, ["-tls1", "-cipher", low]),
        "TLS 1.1": (False, ["-tls1_1", "-cipher", low]),
        "TLS 1.2 ECDHE-ECDSA-AES128-SHA (CBC, SHA-1)":
            (False, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"]),
        "TLS 1.2 ECDHE-ECDSA-AES256-SHA384 (CBC)":
            (False, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-SHA384"]),
        "TLS 1.2 AES128-GCM-SHA256 (RSA key exchange, no forward secrecy)":
            (False, ["-tls1_2", "-cipher", "AES128-GCM-SHA256"]),
        "TLS 1.2 ECDHE-RSA-AES128-SHA (CBC, SHA-1)":
            (False, ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"]),
        "TLS 1.2 DHE-RSA-AES128-SHA256 (CBC)":
            (False, ["-tls1_2", "-cipher", "DHE-RSA-AES128-SHA256"]),
        "TLS 1.2 ECDHE-RSA-AES128-GCM-SHA256": (True, ["-tls1_2", "-cipher",
                                                        "ECDHE-RSA-AES128-GCM-SHA256"]),
        "TLS 1.2 DHE-RSA-AES128-GCM-SHA256 (ffdhe2048)": (True, ["-tls1_2", "-cipher",
                                                                  "DHE-RSA-AES128-GCM-SHA256"]),
        "TLS 1.2 ECDHE-ECDSA-AES128-GCM-SHA256": (True, ["-tls1_2", "-cipher",
                                                          "ECDHE-ECDSA-AES128-GCM-SHA256"]),
        "TLS 1.2 ECDHE-ECDSA-CHACHA20-POLY1305": (True, ["-tls1_2", "-cipher",
                                                          "ECDHE-ECDSA-CHACHA20-POLY1305"]),
        "TLS 1.3": (True, ["-tls1_3"]),
    }
    wrong = []
    for name, (expected, args) in cases.items():
        accepted, protocol, cipher, error, by_server = handshake(port, *args)
        report(f"{name}: {'accepted' if accepted else 'refused'}"
               f"{f' ({protocol}, {cipher})' if accepted else ''}")
        if accepted != expected or (not accepted and not by_server):
            wrong.append(f"{name}: {'accepted' if accepted else 'refused'} {protocol} {cipher} "
                         f"{error[-200:]}")
    assert not wrong, wrong
    # No session tickets (a ticket key would decrypt every recorded session until a restart).
    ticket = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_2"],
                            input="", capture_output=True, text=True, timeout=20, check=False)
    report(f"TLS 1.2 session ticket offered: {'session ticket' in ticket.stdout.lower()}")
    assert "New, TLSv1.2" in ticket.stdout and "session ticket" not in ticket.stdout.lower()


def test_plain_http_redirects_to_https_when_asked(make_stack, report):
    """With tandem_lb_http_redirect (the deployed default), plain HTTP gets a 308 to the same
    URL over HTTPS (a POST stays a POST), HAProxy's own /health excepted; following it lands on
    an instance. Without it (every other stack test), plain HTTP is served."""
    stack = make_stack(instances=2, overrides={"tandem_lb_http_redirect": True})
    head = curl("-i", stack.url("/api/whoami?x=1"))
    report(f"GET over plain HTTP: {head.splitlines()[0]!r}; "
           f"{[line for line in head.splitlines() if line.lower().startswith('location')]}")
    assert head.splitlines()[0].startswith("HTTP/1.1 308"), head
    assert re.search(rf"^location: https://127\.0\.0\.1:{stack.https_port}/api/whoami\?x=1\r?$",
                     head, re.I | re.M), head
    # The plain port in Host is not carried over to HTTPS.
    named = curl("-i", "-H", "Host: shop.example.net:8080", stack.url("/a/b?c=d"))
    assert re.search(rf"^location: https://shop\.example\.net:{stack.https_port}/a/b\?c=d\r?$",
                     named, re.I | re.M), named
    followed = curl("-i", "-L", "--cacert", str(stack.ca_file), "-X", "POST",
                    "-H", "Content-Type: application/json",
                    "-d", '{"clientId":"r","requestNum":1}', stack.url("/api/session"))
    assert "HTTP/1.1 308" in followed and re.search(r"^HTTP/\S+ 200", followed, re.M), followed
    assert '"requestCount":1' in followed, followed
    health = curl("-i", stack.url("/health"))
    assert health.splitlines()[0].startswith("HTTP/1.1 200"), health

    plain = make_stack(instances=1)
    assert curl("-i", plain.url("/api/whoami")).splitlines()[0].startswith("HTTP/1.1 200")


def test_failover_stickiness_and_rolling_restart_over_https(make_stack, make_redis, report):
    """Over HTTPS and HTTP/2, with sessions in Redis: 20 sticky clients (100 POST/s) and 100
    GET/s, while app-1 is stopped (SIGTERM) and started again, then both instances are rolled
    one at a time through HAProxy. Nothing fails; each client keeps its instance until that
    instance goes out, and every session count goes 1, 2, 3... and equals Redis's."""
    redis = make_redis()
    stack = make_stack(instances=2, session_store=redis.url, overrides=ONE_ADDRESS_CROWD)
    url = stack.https_url("/api/session")
    clients = [load.Client(name=f"tls-{n}", ca_file=stack.ca_file, http2=True)
               for n in range(CLIENTS)]
    gets = PacedLoad(stack.https_url("/api/whoami"), rate=GET_RATE, duration=30,
                     ca_file=stack.ca_file, http2=True)
    try:
        with load.Rounds(clients, lambda client, n: session_post(url, client.name, n + 1),
                         ROUND_PAUSE) as rounds, \
                StatusMonitor(stack.api, stack.backend, "app-1") as monitor:
            gets.start()
            time.sleep(2.0)  # Every client has its session and its instance.
            before = {c.name: {o.instance for o in c.outcomes if o.ok} for c in clients}
            stopped = time.monotonic()
            stack.stop_instance("app-1", signal.SIGTERM)
            stack.wait_instance_exit("app-1", timeout=10.0)
            stack.start_instance("app-1", wait=True)
            stack.wait_status("app-1", lambda status: status == "UP", timeout=5.0)
            time.sleep(1.0)
            rolled = time.monotonic()
            for instance_id in stack.instances:
                roll_instance(stack, instance_id)
            took = time.monotonic() - rolled
            rounds.stop()
        get_outcomes = gets.join()
    finally:
        for client in clients:
            client.close()

    posts = [o for client in clients for o in client.outcomes]
    failed = [o for o in posts + get_outcomes if not o.ok]
    problems, moved = check_sessions(clients, redis.session_count)
    versions = {o.http_version for o in posts + get_outcomes if o.ok}
    down_at = monitor.first(is_down, stopped)
    report(f"over HTTPS ({versions}): {len(posts)} POST from {CLIENTS} sticky clients and "
           f"{len(get_outcomes)} GET; app-1 stopped (out after "
           f"{(down_at - stopped) if down_at else float('nan'):.2f} s) and back, then a roll of "
           f"both in {took:.1f} s: {len(failed)} failed; {moved} clients moved; "
           f"{CLIENTS - len(problems)} of {CLIENTS} with every count exactly once")
    for failure in failed[:5]:
        report(f"  failed: {failure.request.method} status {failure.status} "
               f"{failure.error or failure.body[:100]!r}")
    assert versions == {"2"}, versions
    assert not failed
    assert not problems, problems
    # Stickiness: before anything was stopped, each client stayed on one instance.
    assert all(len(instances) == 1 for instances in before.values()), before
    assert monitor.first(is_up, stopped) is not None


def test_certificate_rotation_under_load_fails_nothing(make_stack, report):
    """A new certificate handed to the running HAProxy over its runtime API (as the tandem_lb
    role does) while 100 requests/s arrive, half of them each on a new connection (a full
    handshake each) and half on kept-alive HTTP/2 connections: no request fails, and the
    handshakes after the commit get the new certificate."""
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    old_fingerprint = served_fingerprint(stack.https_port)
    new_pem = tls.self_signed_pem("localhost", ("localhost", "127.0.0.1"))
    trusted = stack.workdir / "both.pem"
    trusted.write_text(stack.ca_file.read_text() + tls.certificate_part(new_pem))
    fresh = NewVisitors(stack.https_port, trusted, rate=GET_RATE // 2, seconds=8)
    kept = PacedLoad(stack.https_url("/api/whoami"), rate=GET_RATE // 2, duration=8,
                     ca_file=trusted, http2=True)
    fresh.start()
    kept.start()
    time.sleep(4.0)
    stack.api.replace_certificate(stack.certificate, new_pem)
    rotated_at = time.monotonic()
    fresh.join()
    outcomes = kept.join()
    new_fingerprint = served_fingerprint(stack.https_port)
    failed = [o for o in outcomes if not o.ok] + fresh.failures()
    after = [o for o in outcomes if o.started > rotated_at] \
        + [began for began in fresh.started if began > rotated_at]
    outcomes = outcomes + fresh.results
    report(f"certificate {old_fingerprint[:23]}... replaced by {new_fingerprint[:23]}... over the "
           f"runtime API under {len(outcomes)} HTTPS requests ({len(after)} after it): "
           f"{len(failed)} failed")
    for failure in failed[:5]:
        report(f"  failed: {failure}")
    assert new_fingerprint == tls.fingerprint(new_pem) != old_fingerprint
    # Every new connection after the commit got the new certificate, and before it the old one.
    assert fresh.certificates_after(rotated_at) == {new_fingerprint}
    assert old_fingerprint in fresh.certificates
    assert after and not failed


def test_the_client_supplied_forwarded_proto_is_replaced(make_stack):
    """HAProxy sets X-Forwarded-Proto itself: over HTTPS a client's "http" does not make the
    session cookie lose Secure (the header cannot be used to downgrade it)."""
    stack = make_stack(instances=1)
    head = curl("--cacert", str(stack.ca_file), "-i", "-X", "POST",
                "-H", "Content-Type: application/json", "-H", "X-Forwarded-Proto: http",
                "-d", '{"clientId":"x","requestNum":1}', stack.https_url("/api/session"))
    [cookie] = set_cookies(head, "tandem_session")
    assert "secure" in attributes(cookie), cookie



def test_tandemctl_checks_the_route_over_https_when_plain_http_redirects(make_stack, report):
    """With the redirect on, a plain-HTTP request carrying an instance's cookie is answered 308 by
    HAProxy and proves nothing; `tandemctl ready --wait` with an https:// frontend URL (what the
    Ansible roll gives it when HTTPS is on) sees the instance answer through HAProxy over TLS."""
    stack = make_stack(instances=2, overrides={"tandem_lb_http_redirect": True})
    ctl = Tandemctl(stack)
    assert ctl.run("drain", "app-1").returncode == 0
    plain = ctl.run("--url", stack.url(), "ready", "app-1", "--wait", "5")
    report(f"ready --wait through {stack.url()}: exit {plain.returncode}, "
           f"{plain.stderr.strip().splitlines()[-1]!r}")
    assert plain.returncode == 5 and "HTTP 308" in plain.stderr, plain.stderr
    assert ctl.run("drain", "app-1").returncode == 0
    secure = ctl.run("--url", stack.https_url(), "ready", "app-1", "--wait", "5")
    report(f"ready --wait through {stack.https_url()}: exit {secure.returncode}, "
           f"{secure.stderr.strip().splitlines()[-1]!r}")
    assert secure.returncode == 0, secure.stderr
    assert f"answers through {stack.https_url()}" in secure.stderr, secure.stderr
