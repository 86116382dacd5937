"""The HAProxy template: every variant renders and passes `haproxy -c`, the rendered file says
what docs/design.md's HAProxy contract asks, the check intervals meet "out within 2 s, back within
3 s", every errorfile is the JSON answer it should be, and every variable is documented where the
belongs (template header, README, defaults).
"""

import json
import re

import pytest

from tests.harness import config, tls
from tests.harness import stack as stack_module

# Spec: a dead or draining instance out within 2 s, a recovered one back within 3 s.
OUT_WITHIN = 2.0
BACK_WITHIN = 3.0

LOCAL = {
    "tandem_lb_bind_address": "127.0.0.1",
    "tandem_lb_port": 18080,
    "tandem_lb_stats_bind": "127.0.0.1:18404",
    "tandem_lb_chroot": "",
    "tandem_lb_user": "",
    "tandem_lb_group": "",
    "tandem_lb_log_targets": ["stdout format raw local0"],
}

VARIANTS = {
    "deployment defaults": {},
    "local run (harness)": LOCAL,
    "roundrobin": {"tandem_lb_balance": "roundrobin"},
    "one instance": {"tandem_lb_backend_servers": [{"id": "app-1", "host": "127.0.0.1",
                                                    "port": 3001}]},
    "four instances on two hosts": {"tandem_lb_backend_servers": [
        {"id": f"app-{n}", "host": f"10.0.0.{1 + (n - 1) // 2}", "port": 3000 + n}
        for n in range(1, 5)]},
    "other names and port": {"tandem_lb_port": 8080, "tandem_lb_backend_name": "web",
                             "tandem_lb_cookie_name": "SERVERID",
                             "tandem_lb_admin_socket": "/run/haproxy/tandem.sock"},
    "one syslog target": {"tandem_lb_log_targets": ["127.0.0.1:514 local0 info"]},
    "HAProxy's own thread count": {"tandem_lb_nbthread": 0},
    "no per-source limit": {"tandem_lb_source_maxconn": 0, "tandem_lb_source_request_rate": 0,
                            "tandem_lb_source_session_rate": 0,
                            "tandem_lb_source_connection_rate": 0},
    "only the per-source connection limit": {"tandem_lb_source_request_rate": 0,
                                             "tandem_lb_source_session_rate": 0},
    "other rate period and table size": {"tandem_lb_source_rate_period": 60,
                                         "tandem_lb_source_table_size": "1m"},
    "every request logged": {"tandem_lb_log_requests": "all"},
    "no request log": {"tandem_lb_log_requests": "off"},
    "plain HTTP only (behind another TLS terminator)": {"tandem_lb_https_port": 0},
    "plain HTTP served beside HTTPS": {"tandem_lb_http_redirect": False},
    "HTTPS on another port, with HSTS": {"tandem_lb_https_port": 8443,
                                         "tandem_lb_hsts_max_age": 63072000},
    "a balancer of a pair, with the read-only API for its peer": {
        "tandem_lb_peer_api_bind": "10.0.0.10:8405"},
}


def seconds(duration):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", str(duration))
    assert match, f"not a duration: {duration!r}"
    value = float(match.group(1))
    return value * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 0.001}[match.group(2)]


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_passes_haproxy_check(name, tmp_path):
    # haproxy -c loads the errorfiles: they are rendered as the role does, into a directory of
    # the test's own.
    # So does the certificate list: a self-signed certificate in the test's own directory.
    variant = {**VARIANTS[name], "tandem_lb_errorfiles_dir": str(tmp_path / "errors"),
               "tandem_lb_tls_dir": str(tmp_path / "tls")}
    config.render_errorfiles(variant)
    tls.write_self_signed(tmp_path / "tls")
    path = tmp_path / "haproxy.cfg"
    path.write_text(config.render(variant))
    output = config.validate(path)
    # The only warning allowed: no state file yet, which is normal before the first reload.
    warnings = [line for line in output.splitlines() if "[WARNING]" in line
                and "server state file" not in line]
    assert not warnings, output


def test_defaults_render_the_design_contract():
    text = config.render()
    expected = [
        "bind 0.0.0.0:80",
        "option forwardfor",
        "unique-id-format %[uuid()]",
        "http-request set-header X-Request-ID %[unique-id]",
        "%ID\"",
        "if { path /health }",
        "acl blocked_path path /metrics /api/metrics",
        "http-request deny deny_status 403 if blocked_path",
        "balance leastconn",
        'cookie tandem_instance insert indirect nocache httponly attr "SameSite=Lax"',
        'http-after-response replace-header Set-Cookie "^(tandem_instance=.*)" "\\1; Secure" '
        "if { ssl_fc }",
        # HTTPS (haproxy/README.md, "TLS"): plain HTTP redirected, the scheme told.
        "bind 0.0.0.0:443 ssl crt-list /etc/haproxy/tls/certificates.list alpn h2,http/1.1",
        "ssl-default-bind-options prefer-client-ciphers ssl-min-ver TLSv1.2 no-tls-tickets",
        "ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
        "TLS_CHACHA20_POLY1305_SHA256",
        "http-request redirect location https://%[req.hdr(host),regsub(:[0-9]*$,)]"
        "%[capture.req.uri] code 308 unless { ssl_fc }",
        "http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
        "tcp-request connection reject if { sc0_conn_rate gt 1000 }",
        "http-check send meth GET uri /health",
        "http-check expect status 200",
        "option redispatch 1",
        "retries 3",
        "default-server observe layer4 error-limit 1 on-error mark-down",
        "timeout server 5s",
        "http-request set-timeout server 30s if { path_beg /api/load-test }",
        "retry-on conn-failure empty-response response-timeout 503",
        "http-request disable-l7-retry unless METH_GET || METH_HEAD",
        "http-reuse safe",
        "timeout http-request 5s",
        "timeout queue 5s",
        "option http-buffer-request",
        "server-state-file /var/lib/haproxy/server-state",
        "load-server-state-from-file global",
        "server app-1 127.0.0.1:3001 cookie app-1 check",
        "server app-2 127.0.0.1:3002 cookie app-2 check",
        "stats socket /run/haproxy/admin.sock mode 660 level admin",
        "bind 127.0.0.1:8404",
        "http-request use-service prometheus-exporter if { path /metrics }",
        "stats uri /stats",
        # Per-source limits and HAProxy's own answers.
        "stick-table type ipv6 size 100k expire 20s "
        "store conn_cur,http_req_rate(10s),gpc0_rate(10s),conn_rate(10s)",
        "tcp-request connection track-sc0 src,ipmask(32,64)",
        "tcp-request connection reject if { sc0_conn_cur gt 100 }",
        "acl over_request_rate sc0_http_req_rate gt 3000",
        "http-request deny deny_status 429 if over_request_rate",
        "acl over_session_rate sc0_gpc0_rate gt 100",
        "http-request deny deny_status 429 if METH_POST { path /api/session } over_session_rate",
        # By default HAProxy's own refusals leave no log line (a flood would buy one each).
        "option dontlog-normal",
        "http-request set-log-level silent if over_request_rate",
        "http-request set-log-level silent if blocked_path",
        "http-response sc-inc-gpc0(0) if { res.cook(tandem_session) -m found }",
        "errorfile 429 /etc/haproxy/errors/tandem/429.http",
        "errorfile 503 /etc/haproxy/errors/tandem/503.http",
    ]
    missing = [line for line in expected if line not in text]
    assert not missing, f"not in the rendered defaults: {missing}"
    # HSTS only when asked for: with the self-signed default it would lock browsers out.
    assert "Strict-Transport-Security" not in text
    # One way to answer errors: the errorfiles, never an http-error line beside them.
    assert not [line for line in text.splitlines() if line.strip().startswith("http-error")]


def test_no_per_source_limit_renders_no_tracking():
    text = config.render({"tandem_lb_source_maxconn": 0, "tandem_lb_source_request_rate": 0,
                          "tandem_lb_source_session_rate": 0,
                          "tandem_lb_source_connection_rate": 0})
    assert "stick-table" not in text and "track-sc0" not in text and "sc0_" not in text
    assert "deny_status 429" not in text and "sc-inc-gpc0" not in text


def parse_errorfile(text):
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return lines[0], headers, body


@pytest.mark.parametrize("status", sorted(config.load_defaults()["tandem_lb_error_messages"]))
def test_every_errorfile_is_a_json_answer(status):
    values = config.load_defaults()
    text = config.render_errorfile(status)
    status_line, headers, body = parse_errorfile(text)
    assert re.fullmatch(rf"HTTP/1\.1 {status} [A-Z][A-Za-z -]+", status_line), status_line
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-cache"
    assert int(headers["Content-Length"]) == len(body.encode()), "Content-Length is not the body's"
    assert body.isascii()
    assert json.loads(body) == {"error": values["tandem_lb_error_messages"][status]}
    if status == 429:
        assert headers["Retry-After"] == str(values["tandem_lb_source_rate_period"])
    elif status == 503:
        assert headers["Retry-After"] == str(values["tandem_lb_unavailable_retry_after"])
    else:
        assert "Retry-After" not in headers


def test_check_intervals_meet_the_out_and_back_times():
    values = config.load_defaults()
    inter = seconds(values["tandem_lb_check_inter"])
    fastinter = seconds(values["tandem_lb_check_fastinter"])
    downinter = seconds(values["tandem_lb_check_downinter"])
    fall = values["tandem_lb_check_fall"]
    rise = values["tandem_lb_check_rise"]
    # Worst case: the failure starts just after a check; later checks come every fastinter.
    out = inter + (fall - 1) * fastinter
    back = downinter + (rise - 1) * fastinter
    assert out <= OUT_WITHIN
    assert back <= BACK_WITHIN
    # The harness's drain grace covers both the worst case and docs/design.md's fall x inter.
    grace = seconds(stack_module.DRAIN_GRACE)
    assert grace > out and grace > fall * inter


def test_a_new_connection_gets_less_time_than_an_idle_keep_alive_one():
    """HAProxy 2.6 gives a connection that has not sent its first request timeout http-request
    from the accept (tests/stack/test_abuse_connections.py measures it): that must be the shorter
    one, so idle new connections cannot hold slots longer than served clients."""
    values = config.load_defaults()
    assert seconds(values["tandem_lb_timeout_http_request"]) < seconds(
        values["tandem_lb_timeout_http_keep_alive"])


def test_every_variable_is_documented_and_defaulted():
    """Each variable has a default in haproxy/defaults.yml and a comment there saying what it is
    for (on the lines above it, alone or for its group), and the template uses it."""
    defaults = set(config.load_defaults())
    template = (config.HAPROXY_DIR / config.TEMPLATE_NAME).read_text()
    body = template.split("#}", 1)[1]
    # The errorfile template reads the same variables (and its loop variable, set by its caller).
    errorfile = (config.HAPROXY_DIR / config.ERRORFILE_TEMPLATE_NAME).read_text()
    errorfile_body = errorfile.split("#}", 1)[1]
    used = set(re.findall(r"\btandem_lb_\w+", body + errorfile_body)) - {"tandem_lb_error_status"}
    assert used - defaults == set(), "used in the template without a default"
    assert defaults - used == set(), "defaulted but unused"
    lines = config.DEFAULTS_PATH.read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        name = re.match(r"^(tandem_lb_\w+):", line)
        if not name:
            continue
        above = number - 1
        while above >= 0 and re.match(r"^(tandem_lb_\w+:|  )", lines[above]):
            above -= 1  # The variables of a group share the comment above the first.
        if above < 0 or not lines[above].startswith("# "):
            undocumented.append(name.group(1))
    assert undocumented == [], "no comment in haproxy/defaults.yml"


def test_every_timeout_and_check_interval_has_a_comment():
    lines = (config.HAPROXY_DIR / config.TEMPLATE_NAME).read_text().splitlines()
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(("timeout ", "default-server ", "hard-stop-after ",
                                "stats timeout ", "stats refresh ")):
            assert lines[number - 1].strip().startswith("#"), f"line {number + 1}: {stripped}"


def test_unknown_override_is_refused():
    with pytest.raises(KeyError):
        config.render({"tandem_lb_prot": 8080})


def test_one_haproxy_thread_unless_told_otherwise():
    assert "\n    nbthread 1\n" in config.render()
    assert "\n    nbthread 3\n" in config.render({"tandem_lb_nbthread": 3})
    # 0 leaves HAProxy's own choice, one thread per CPU: no nbthread line at all.
    assert "nbthread" not in config.render({"tandem_lb_nbthread": 0})


@pytest.mark.parametrize("value, wanted, unwanted", [
    ("errors", ["option dontlog-normal", "http-request set-log-level silent if over_request_rate"],
     ["no log"]),
    ("ERRORS", ["option dontlog-normal"], ["no log"]),
    # YAML reads an unquoted off or on as a boolean.
    (False, ["no log"], ["option dontlog-normal", "set-log-level silent"]),
    (True, [], ["no log", "option dontlog-normal", "set-log-level silent"]),
    ("all", [], ["no log", "option dontlog-normal", "set-log-level silent"]),
])
def test_request_log_setting(value, wanted, unwanted):
    frontend = config.render({"tandem_lb_log_requests": value}).split("frontend public", 1)[1]
    frontend = frontend.split("\nbackend ", 1)[0]
    lines = [line.strip() for line in frontend.splitlines() if not line.strip().startswith("#")]
    assert all(line in lines for line in wanted), (value, wanted)
    assert not [line for line in lines if any(line.startswith(u) for u in unwanted)], value


def test_unknown_request_log_setting_stops_haproxy_check(tmp_path):
    variant = {"tandem_lb_log_requests": "verbose",
               "tandem_lb_errorfiles_dir": str(tmp_path / "errors")}
    config.render_errorfiles(variant)
    path = tmp_path / "haproxy.cfg"
    path.write_text(config.render(variant))
    with pytest.raises(Exception) as failure:
        config.validate(path)
    assert "log_requests_must_be_errors_all_or_off" in str(failure.value)


def test_https_on_another_port_redirects_there_and_sends_hsts_when_asked():
    text = config.render({"tandem_lb_https_port": 8443, "tandem_lb_hsts_max_age": 63072000})
    assert ("http-request redirect location https://%[req.hdr(host),regsub(:[0-9]*$,)]:8443"
            "%[capture.req.uri] code 308 unless { ssl_fc }") in text
    assert ('http-after-response set-header Strict-Transport-Security "max-age=63072000" '
            "if { ssl_fc }") in text


def test_without_https_nothing_of_tls_is_rendered():
    text = config.render({"tandem_lb_https_port": 0})
    assert "ssl" not in text.replace("ssl_fc", "")
    assert "redirect" not in text and "Strict-Transport-Security" not in text


def test_the_peer_api_is_read_only_and_second():
    """A balancer of a pair gives its peer a second runtime API on the private network, at level
    user (`show` only), and the admin socket stays the first `stats socket` (the package's
    haproxy-server-state saves the states through the first); none by default."""
    def stats_sockets(overrides=None):
        return [line.split() for line in config.render(overrides).splitlines()
                if line.strip().startswith("stats socket")]

    assert len(stats_sockets()) == 1
    sockets = stats_sockets({"tandem_lb_peer_api_bind": "10.0.0.10:8405"})
    assert [words[2] for words in sockets] == ["/run/haproxy/admin.sock", "ipv4@10.0.0.10:8405"]
    assert sockets[1][3:] == ["level", "user"]
