"""One view of the fleet, deployed by ansible/deploy.yml into a systemd guest with the local
inventory (the tandem_monitoring role's Prometheus, rules, console page and Alertmanager, and the
node exporter), with its intervals shortened for the test:

- after 60 s of mixed load through :80, the recorded fleet request rate equals the sum over the
  instances, and each instance's recorded share matches what the load generator counted from
  X-Container-Id, within 2 %;
- an instance stopped under load raises TandemInstanceDown, which Alertmanager delivers to a
  webhook this test runs, and its resolution comes once the instance is back;
- the console page renders in headless Chromium (the screenshot is kept in the build tree) and
  every graph's query returns data, as does every panel of the Grafana dashboard;
- a request id sent through :80 is found in the journal, HAProxy's line and the instance's, by the
  one documented command, and the instance's by its journal field;
- the HTTPS front, deployed with a self-signed certificate valid 10 days, is probed by the blackbox
  exporter: the expiry Prometheus holds is the served certificate's, about 10 days ahead, and
  TandemTlsCertificateExpiresSoon (21 days) goes from pending to firing after its minute and
  reaches the webhook.
"""

import collections
import datetime
import http.server
import json
import os
import pathlib
import re
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request

from tests.harness import tls
from tests.harness.load import PacedLoad, Request, parallel
from tests.harness.stack import ONE_ADDRESS_CROWD
from tests.harness.waiting import wait_until
from tests.system.deployment import fmt

REPO = pathlib.Path(__file__).resolve().parents[2]
PROMETHEUS = "http://127.0.0.1:9090"
LB = "http://127.0.0.1:80"
LOAD_RATE = 60
LOAD_SECONDS = 60
ALERT_BOUND = 60.0  # seconds from the stop to the notification: 30 s of "for", plus checks
# The self-signed certificate's days: under TandemTlsCertificateExpiresSoon's 21 (warning), over
# its 7 (critical).
CERTIFICATE_DAYS = 10
DAY = 86400.0
# The HTTPS front as the local inventory's Prometheus probes it, and the expiry alert's wait.
HTTPS_FRONT = "https://127.0.0.1:443/health"
TLS_ALERT = "TandemTlsCertificateExpiresSoon"
TLS_ALERT_FOR = 60.0
# Seconds from the alert's pending to its notification beyond its "for": an evaluation (1 s), the
# group wait (1 s), the delivery.
TLS_ALERT_SLACK = 10.0
SHARE_TOLERANCE = 0.02
# The one command (README, "Finding one request") that shows a request's whole path.
FIND_REQUEST = ["journalctl", "--no-pager", "-o", "cat", "-u", "haproxy", "-u", "tandem@*",
                "--grep"]


class Webhook:
    """Alertmanager's receiver for the test: records every notification POSTed to it."""

    def __init__(self):
        self.notifications = []  # (monotonic time, payload)
        webhook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                webhook.notifications.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def first(self, status, alertname, after):
        found = self.alerts(status, alertname, after)
        return found[0][0] if found else None

    def alerts(self, status, alertname, after):
        """[(monotonic time, alert)] of the notifications received since `after`."""
        return [(when, alert) for when, payload in list(self.notifications) if when >= after
                for alert in payload["alerts"]
                if alert["status"] == status and alert["labels"].get("alertname") == alertname]


def query(expr, at=None):
    params = {"query": expr}
    if at is not None:
        params["time"] = f"{at:.3f}"
    url = f"{PROMETHEUS}/api/v1/query?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def prometheus_api(path):
    with urllib.request.urlopen(f"{PROMETHEUS}{path}", timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]


def prometheus_alerts(alertname):
    """Prometheus's alerts of that name, pending or firing."""
    return [a for a in prometheus_api("/api/v1/alerts")["alerts"]
            if a["labels"]["alertname"] == alertname]


def prometheus_rule(alertname, severity):
    return next(r for g in prometheus_api("/api/v1/rules?type=alert")["groups"]
                for r in g["rules"] if r["name"] == alertname
                and r["labels"].get("severity") == severity)


def rfc3339(text):
    """Seconds since the epoch of Prometheus's RFC 3339 times (nanoseconds, Z)."""
    match = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    assert match, text
    seconds = datetime.datetime.fromisoformat(match.group(1) + "+00:00").timestamp()
    return seconds + float("0." + (match.group(2) or "0"))


def _probe():
    """The probe of the HTTPS front: {"success", "expiry", "labels"} once both series are in."""
    success = query('probe_success{job="https"}')
    expiry = query('probe_ssl_earliest_cert_expiry{job="https"}')
    if len(success) != 1 or len(expiry) != 1:
        return None
    labels = {k: v for k, v in expiry[0]["metric"].items() if k != "__name__"}
    return {"success": float(success[0]["value"][1]), "expiry": float(expiry[0]["value"][1]),
            "labels": labels}


def wait_for(predicate, timeout, what):
    return wait_until(predicate, timeout, 0.5, what,
                      error=lambda _: AssertionError(f"{what} within {timeout} s"))


def mixed(number):
    kind = number % 3
    if kind == 0:
        return Request("GET", f"{LB}/api/whoami")
    if kind == 1:
        return Request("POST", f"{LB}/api/session", b'{"clientId": 1, "requestNum": 1}',
                       ("Content-Type: application/json",))
    return Request("GET", f"{LB}/api/load-test?iterations=10000")


def test_the_fleet_in_one_view(target, report):
    with Webhook() as webhook:
        # The whole load comes from 127.0.0.1, so the per-client limits would answer most of the
        # new-session POSTs with 429: lifted, as for any one-address crowd. Every request logged
        # by both, so that any request id can be followed (by default only those that went
        # wrong are).
        extra_vars = {
            **ONE_ADDRESS_CROWD,
            "tandem_lb_log_requests": "all",
            "tandem_app_access_log": "all",
            "tandem_monitoring_scrape_interval": "1s",
            "tandem_monitoring_evaluation_interval": "1s",
            "tandem_monitoring_alert_group_wait": "1s",
            "tandem_monitoring_alert_group_interval": "1s",
            "tandem_monitoring_alert_webhook_url": webhook.url,
            "tandem_lb_tls_self_signed_days": CERTIFICATE_DAYS,
            "tandem_lb_tls_self_signed_renew_days": 1,
        }
        deploying = time.monotonic()
        deployed = target.playbook("deploy.yml", extra_vars=extra_vars)
        assert deployed.ok, deployed.tail()
        guest = target.guest
        wait_for(lambda: len(query('up{job="tandem"} == 1')) == 2, 30,
                 "Prometheus scrapes both instances")

        # --- the HTTPS front's certificate, as the probe reads it ------------------------------
        probe = wait_for(_probe, 30, "the blackbox exporter's probe of the HTTPS front")
        probed = time.monotonic()
        served = ssl.cert_time_to_seconds(tls.not_after(
            ssl.get_server_certificate(("127.0.0.1", 443), timeout=10)))
        days_left = (probe["expiry"] - time.time()) / DAY
        report(f"HTTPS front probed {fmt(probed - deploying)} after the deployment began: "
               f"probe_success {probe['success']:g}, probe_ssl_earliest_cert_expiry "
               f"{probe['expiry']:.0f} ({days_left:.3f} days ahead; deployed "
               f"tandem_lb_tls_self_signed_days {CERTIFICATE_DAYS}), the served certificate's "
               f"notAfter {served:.0f}; labels {probe['labels']}")
        assert probe["success"] == 1
        assert probe["labels"] == {"job": "https", "instance": HTTPS_FRONT,
                                   "host": "tandem-local"}, probe["labels"]
        assert probe["expiry"] == served
        assert abs(days_left - CERTIFICATE_DAYS) <= 1

        # --- 60 s of mixed load, counted by instance ---------------------------------------------
        load = PacedLoad(f"{LB}/api/whoami", LOAD_RATE, LOAD_SECONDS, request_for=mixed)
        load.start()
        outcomes = load.join()
        ended = time.time()
        time.sleep(2.5)  # Two more scrapes and evaluations past the end of the load.
        at = ended
        failed = [o for o in outcomes if not o.ok]
        counted = collections.Counter(o.instance for o in outcomes if o.ok)
        recorded = float(query("tandem:http_requests_total:rate1m", at)[0]["value"][1])
        summed = float(query('sum(rate(tandem_http_requests_total{route!~"/health|/metrics"}[1m]))',
                             at)[0]["value"][1])
        shares = {r["metric"]["instance_id"]: float(r["value"][1])
                  for r in query("tandem:instance_share:ratio1m", at)}
        counted_shares = {i: n / sum(counted.values()) for i, n in counted.items()}
        report(f"{len(outcomes)} requests in {LOAD_SECONDS} s, {len(failed)} failed, counted by "
               f"instance {dict(counted)}; recorded fleet rate {recorded:.2f}/s, sum over the "
               f"instances {summed:.2f}/s; shares recorded {shares}, counted {counted_shares}")
        assert not failed
        assert abs(recorded - summed) <= SHARE_TOLERANCE * summed
        assert abs(recorded - LOAD_RATE) <= 0.1 * LOAD_RATE
        assert set(shares) == set(counted_shares)
        for instance_id, share in shares.items():
            assert abs(share - counted_shares[instance_id]) <= SHARE_TOLERANCE, instance_id

        # --- the dashboard --------------------------------------------------------------------
        screenshot = _screenshot(f"{PROMETHEUS}/consoles/tandem.html")
        drawn = _graphs_drawn(f"{PROMETHEUS}/consoles/tandem.html")
        with urllib.request.urlopen(f"{PROMETHEUS}/consoles/tandem.html", timeout=10) as page:
            html = page.read().decode()
        graph_queries = [(double or single).replace("&#34;", '"').replace("&#39;", "'")
                         for double, single in re.findall(r'data-expr=(?:"([^"]*)"|\'([^\']*)\')',
                                                          html)]
        empty = [q for q in graph_queries if not query(q)]
        grafana = json.loads((REPO / "monitoring/grafana/tandem.json").read_text())
        panel_queries = [t["expr"] for p in grafana["panels"] for t in p["targets"]]
        empty_panels = [q for q in panel_queries if not query(q)]
        report(f"console page: {len(graph_queries)} graphs, series drawn by each in Chromium "
               f"{drawn}, screenshot {screenshot} ({screenshot.stat().st_size} bytes), graphs "
               f"without data {empty}; Grafana: {len(panel_queries)} panels, without data "
               f"{empty_panels}")
        assert len(graph_queries) >= 7 and not empty
        assert len(drawn) == len(graph_queries) and all(n >= 1 for n in drawn.values()), drawn
        assert panel_queries and not empty_panels
        assert screenshot.stat().st_size > 20_000

        # --- one request, found in the journal -------------------------------------------------
        answer = parallel([Request("GET", f"{LB}/api/whoami")])[0]
        request_id = answer.headers["x-request-id"]
        sent = time.monotonic()
        lines = wait_for(lambda: _both_lines(guest, request_id), 5, "both log lines of the request")
        found_after = time.monotonic() - sent
        by_field = guest.run(["journalctl", "--no-pager", "-o", "cat",
                              f"TANDEM_REQUEST_ID={request_id}"]).stdout.strip().splitlines()
        report(f"request {request_id}: found after {fmt(found_after)} by `{' '.join(FIND_REQUEST)} "
               f"<id>`: {lines}; by the field TANDEM_REQUEST_ID: {by_field}")
        assert len(by_field) == 1 and answer.instance in by_field[0]

        # --- an instance stopped under load: the alert, and its resolution ------------------------
        load = PacedLoad(f"{LB}/api/whoami", 50, 80)
        load.start()
        time.sleep(2)
        stopped = time.monotonic()
        guest.systemctl("stop", "tandem@3001")
        fired = wait_for(lambda: webhook.first("firing", "TandemInstanceDown", stopped), 90,
                         "TandemInstanceDown reached the webhook")
        started = time.monotonic()
        guest.systemctl("start", "tandem@3001")
        resolved = wait_for(lambda: webhook.first("resolved", "TandemInstanceDown", started), 60,
                            "TandemInstanceDown's resolution reached the webhook")
        # The load is long enough for the slowest alert allowed; once resolved, it may end.
        outcomes = load.stop()
        report(f"tandem@3001 stopped: TandemInstanceDown delivered {fmt(fired - stopped)} later "
               f"(bound {ALERT_BOUND:.0f} s: 30 s of 'for', the checks and the group wait); "
               f"started again: resolved {fmt(resolved - started)} later; load meanwhile "
               f"{len(outcomes)} requests, {sum(not o.ok for o in outcomes)} failed")
        assert fired - stopped <= ALERT_BOUND
        assert not [o for o in outcomes if not o.ok]

        # --- the certificate's expiry alert: pending, firing after its minute, delivered -------
        # By now (minutes after the first probe) it has fired; the wait bounds a slow run.
        bound = TLS_ALERT_FOR + TLS_ALERT_SLACK
        firing = wait_for(lambda: [a for a in prometheus_alerts(TLS_ALERT)
                                   if a["state"] == "firing"],
                          max(1.0, bound - (time.monotonic() - probed)),
                          f"{TLS_ALERT} firing in Prometheus")
        delivered = wait_for(lambda: webhook.alerts("firing", TLS_ALERT, deploying), 10,
                             f"{TLS_ALERT} reached the webhook")
        rule = prometheus_rule(TLS_ALERT, "warning")
        pending_at = rfc3339(firing[0]["activeAt"])
        delivered_at = time.time() - (time.monotonic() - delivered[0][0])
        probed_at = time.time() - (time.monotonic() - probed)
        severities = [a["labels"]["severity"] for a in firing]
        report(f"{TLS_ALERT}: pending {fmt(pending_at - probed_at)} after the probe was first "
               f"seen, firing in Prometheus {severities} with "
               f"{float(firing[0]['value']) / DAY:.3f} days left, delivered to the webhook "
               f"{fmt(delivered_at - pending_at)} after it became pending (the rule's for: "
               f"{rule['duration']:g} s): {[a['labels'] for _, a in delivered]}")
        assert [a["labels"]["severity"] for a in firing] == ["warning"]
        assert firing[0]["labels"]["host"] == "tandem-local"
        assert firing[0]["labels"]["instance"] == HTTPS_FRONT
        assert rule["duration"] == TLS_ALERT_FOR
        assert TLS_ALERT_FOR <= delivered_at - pending_at <= TLS_ALERT_FOR + TLS_ALERT_SLACK
        assert {a["labels"]["severity"] for _, a in delivered} == {"warning"}


def _both_lines(guest, request_id):
    lines = guest.run(FIND_REQUEST + [request_id], check=False).stdout.strip().splitlines()
    haproxy = [line for line in lines if not line.startswith("{")]
    instance = [line for line in lines if line.startswith("{") and '"request"' in line]
    return lines if haproxy and instance else None


def _chromium(url, *arguments):
    """Headless Chromium on the page, its scripts given 8 s of virtual time to fetch and draw;
    returns what it printed."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium is not installed: packaging/install-deps.sh test installs it"
    profile = tempfile.mkdtemp(prefix="tandem-chromium-")
    try:
        return subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", f"--user-data-dir={profile}",
                               "--window-size=1400,2200", "--virtual-time-budget=8000",
                               *arguments, url],
                              check=True, timeout=120, capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def _graphs_drawn(url):
    """Series each graph of the page drew, by its id: Rickshaw draws a series as a path of class
    "path" (the axes are of other classes), and an error as a prom_graph_error."""
    dom = _chromium(url, "--dump-dom")
    graphs = re.findall(r'<div id="([^"]+)" class="tandem-graph"(.*?)(?=<h3>|<script>)', dom,
                        re.S)
    return {name: (-1 if "prom_graph_error" in body else body.count('class="path"'))
            for name, body in graphs}


def _screenshot(url):
    """The page as a PNG, kept beside the test's build output (TANDEM_BUILD_DIR) or in a
    temporary folder."""
    folder = pathlib.Path(os.environ.get("TANDEM_BUILD_DIR") or tempfile.mkdtemp())
    path = folder / "tandem-console.png"
    _chromium(url, f"--screenshot={path}")
    return path
