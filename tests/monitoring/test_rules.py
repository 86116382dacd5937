"""The monitoring's files, checked without a deployment: the rules pass promtool's check and its
unit tests (every alert fires when it should and stays silent when it should), the configurations
the tandem_monitoring role renders for both inventories pass promtool, amtool and the blackbox
exporter's own check, the HTTPS probe reaches every balancer's front (and none without HTTPS), the
Redis probe every data node and Sentinel (and none without them), and the Grafana dashboard's
panels all carry a query of the recorded series."""

import json
import pathlib
import subprocess

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
RULES = REPO / "monitoring/rules"
ROLE = REPO / "ansible/roles/tandem_monitoring"


def run(argv, cwd=None):
    return subprocess.run(argv, cwd=cwd, text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300, check=False)


def test_the_rules_pass_promtool_check():
    result = run(["promtool", "check", "rules", str(RULES / "tandem.rules.yml")])
    assert result.returncode == 0, result.stdout


def test_every_alert_has_unit_tests_that_pass():
    result = run(["promtool", "test", "rules", "tandem.rules.test.yml"], cwd=RULES)
    assert result.returncode == 0, result.stdout
    rules = yaml.safe_load((RULES / "tandem.rules.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests = yaml.safe_load((RULES / "tandem.rules.test.yml").read_text())["tests"]
    tested = {t["alertname"] for group in tests for t in group.get("alert_rule_test", [])}
    fired = {t["alertname"] for group in tests for t in group.get("alert_rule_test", [])
             if t["exp_alerts"]}
    silent = {t["alertname"] for group in tests for t in group.get("alert_rule_test", [])
              if not t["exp_alerts"]}
    assert alerts == tested, alerts ^ tested
    assert alerts == fired, alerts - fired
    assert alerts == silent, alerts - silent
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert rule["annotations"].get("runbook"), rule["alert"]


# The blackbox exporter's standard relabeling, for every probed job: the address listed is the
# probe's target and the instance; the exporter, on the monitoring host's listen address, is
# what is scraped.
PROBE_RELABELING = [
    {"source_labels": ["__address__"], "target_label": "__param_target"},
    {"source_labels": ["__param_target"], "target_label": "instance"},
    {"target_label": "__address__", "replacement": "127.0.0.1:9115"},
]

TEMPLATES = ("prometheus.yml.j2", "alertmanager.yml.j2", "blackbox.yml.j2",
             "blackbox-exporter.default.j2", "redis-exporter.default.j2")


def render(tmp_path, inventory, **extra_vars):
    """The role's templates rendered by Ansible itself with the inventory's hosts and variables
    (and extra_vars over them), into tmp_path; returns the path of each by its rendered name."""
    playbook = tmp_path / "render.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the monitoring's configurations",
        "hosts": "tandem_monitoring",
        "gather_facts": False,
        "connection": "local",
        "vars_files": [str(ROLE / "defaults/main.yml")],
        "tasks": [
            {"name": f"Render {name}", "delegate_to": "localhost",
             "ansible.builtin.template": {"src": str(ROLE / "templates" / name),
                                          "dest": str(tmp_path / name.removesuffix(".j2"))}}
            for name in TEMPLATES],
    }]))
    extra_vars = {"tandem_monitoring_alert_webhook_url": "http://127.0.0.1:9/alerts",
                  "vault_redis_password": "0123456789abcdef", **extra_vars}
    result = run(["ansible-playbook", "-i", f"inventories/{inventory}", str(playbook),
                  "-e", json.dumps(extra_vars)], cwd=REPO / "ansible")
    assert result.returncode == 0, result.stdout
    return {name.removesuffix(".j2"): tmp_path / name.removesuffix(".j2") for name in TEMPLATES}


def scrape_jobs(config):
    return {job["job_name"]: job for job in config["scrape_configs"]}


@pytest.mark.parametrize("inventory", ["local", "example"])
def test_the_rendered_configurations_pass_promtool_and_amtool(tmp_path, inventory):
    rendered = render(tmp_path, inventory)
    config = yaml.safe_load(rendered["prometheus.yml"].read_text())
    jobs = {name: [t for c in job["static_configs"] for t in c["targets"]]
            for name, job in scrape_jobs(config).items()}
    expected = 2 if inventory == "local" else 4  # The instances the balancer balances over.
    assert len(jobs["tandem"]) == expected, jobs
    assert jobs["haproxy"] and jobs["node"] and jobs["blackbox"], jobs
    config["rule_files"] = [str(RULES / "tandem.rules.yml")]
    rendered["prometheus.yml"].write_text(yaml.safe_dump(config))
    checked = run(["promtool", "check", "config", str(rendered["prometheus.yml"])])
    assert checked.returncode == 0, checked.stdout
    checked = run(["amtool", "check-config", str(rendered["alertmanager.yml"])])
    assert checked.returncode == 0, checked.stdout
    checked = run(["prometheus-blackbox-exporter", "--config.check",
                   f"--config.file={rendered['blackbox.yml']}"])
    assert checked.returncode == 0, checked.stdout


@pytest.mark.parametrize("inventory, fronts", [
    ("local", {"tandem-local": "https://127.0.0.1:443/health"}),
    ("example", {"lb1.example.net": "https://10.0.0.10:443/health",
                 "lb2.example.net": "https://10.0.0.11:443/health"}),
])
def test_the_https_probe_reaches_every_balancers_front_through_the_exporter(tmp_path, inventory,
                                                                           fronts):
    rendered = render(tmp_path, inventory)
    job = scrape_jobs(yaml.safe_load(rendered["prometheus.yml"].read_text()))["https"]
    blackbox = yaml.safe_load(rendered["blackbox.yml"].read_text())
    module = blackbox["modules"][job["params"]["module"][0]]
    assert module["prober"] == "http"
    assert module["http"]["valid_status_codes"] == [200]
    assert module["http"]["fail_if_not_ssl"] is True
    assert module["http"]["tls_config"]["insecure_skip_verify"] is True
    assert job["metrics_path"] == "/probe"
    assert job["static_configs"] == [{"targets": [front], "labels": {"host": balancer}}
                                     for balancer, front in fronts.items()]
    assert job["relabel_configs"] == PROBE_RELABELING
    arguments = rendered["blackbox-exporter.default"].read_text()
    assert '--web.listen-address=127.0.0.1:9115"' in arguments
    assert "--config.file=/etc/prometheus/blackbox.yml" in arguments


def test_the_https_probe_follows_the_balancers_settings(tmp_path):
    """Its port and check path, the one address the front listens on (IPv6 in brackets), and no
    probe at all without an HTTPS listener."""
    rendered = render(tmp_path, "example", tandem_lb_https_port=8443, tandem_lb_check_path="/hz",
                      tandem_lb_bind_address="fd00::10")
    job = scrape_jobs(yaml.safe_load(rendered["prometheus.yml"].read_text()))["https"]
    assert job["static_configs"][0]["targets"] == ["https://[fd00::10]:8443/hz"]
    rendered = render(tmp_path, "example", tandem_lb_https_port=0)
    assert "https" not in scrape_jobs(yaml.safe_load(rendered["prometheus.yml"].read_text()))


def test_the_virtual_address_is_probed_where_the_balancers_share_one(tmp_path):
    """The example's address (its prefix dropped), with the fronts' module, port and check path;
    none without a virtual address (the local inventory) or without HTTPS."""
    rendered = render(tmp_path, "example", tandem_lb_check_path="/hz")
    job = scrape_jobs(yaml.safe_load(rendered["prometheus.yml"].read_text()))["vip"]
    assert job["params"] == {"module": ["tandem_https"]}
    assert job["static_configs"] == [{"targets": ["https://10.0.0.9:443/hz"]}]
    assert job["relabel_configs"][-1] == {"target_label": "__address__",
                                          "replacement": "127.0.0.1:9115"}
    for inventory, extra_vars in (("local", {}), ("example", {"tandem_lb_https_port": 0})):
        rendered = render(tmp_path, inventory, **extra_vars)
        assert "vip" not in scrape_jobs(yaml.safe_load(rendered["prometheus.yml"].read_text()))


@pytest.mark.parametrize("inventory, extra_vars, nodes, sentinels", [
    ("example", {}, {"redis1.example.net": "10.0.0.30:6379", "redis2.example.net": "10.0.0.31:6379",
                     "redis3.example.net": "10.0.0.32:6379"},
     {"redis1.example.net": "10.0.0.30:26379", "redis2.example.net": "10.0.0.31:26379",
      "redis3.example.net": "10.0.0.32:26379"}),
    # One Redis host: no Sentinel to probe.
    ("local", {"redis_enabled": True}, {"tandem-local": "127.0.0.1:6379"}, None),
    # No Redis: nothing to probe.
    ("local", {}, None, None),
])
def test_every_redis_node_and_sentinel_is_probed_through_the_exporter(tmp_path, inventory,
                                                                      extra_vars, nodes, sentinels):
    rendered = render(tmp_path, inventory, **extra_vars)
    jobs = scrape_jobs(yaml.safe_load(rendered["prometheus.yml"].read_text()))
    blackbox = yaml.safe_load(rendered["blackbox.yml"].read_text())
    for name, expected in (("redis", nodes), ("sentinel", sentinels)):
        if expected is None:
            assert name not in jobs
            continue
        job = jobs[name]
        assert job["metrics_path"] == "/probe" and job["params"] == {"module": ["tandem_redis"]}
        assert job["static_configs"] == [{"targets": [target], "labels": {"host": host}}
                                         for host, target in expected.items()]
        assert job["relabel_configs"] == PROBE_RELABELING
    # PING, answered by Redis itself with or without a password; nothing secret in the probe.
    module = blackbox["modules"]["tandem_redis"]
    assert module["prober"] == "tcp"
    assert module["tcp"]["query_response"] == [{"send": "PING"},
                                               {"expect": "^(\\+PONG|-NOAUTH)"}]


def test_the_redis_exporter_reads_every_node_and_sentinel_once_switched_on(tmp_path):
    """Off by default: no job. On: one job reads every data node and Sentinel through the exporter
    on the monitoring host, whose environment file carries the password (escaped for systemd)
    and no default node, and the configuration passes promtool."""
    rendered = render(tmp_path, "example")
    jobs = scrape_jobs(yaml.safe_load(rendered["prometheus.yml"].read_text()))
    assert "redis_exporter" not in jobs
    password = 'p"ss\\word-0123456789'
    rendered = render(tmp_path, "example", tandem_monitoring_redis_exporter=True,
                      vault_redis_password=password)
    config = yaml.safe_load(rendered["prometheus.yml"].read_text())
    job = scrape_jobs(config)["redis_exporter"]
    assert job["metrics_path"] == "/scrape"
    assert job["static_configs"] == [
        {"targets": [f"redis://{address}:6379", f"redis://{address}:26379"],
         "labels": {"host": f"redis{n}.example.net"}}
        for n, address in enumerate(("10.0.0.30", "10.0.0.31", "10.0.0.32"), start=1)]
    assert job["relabel_configs"][-1] == {"target_label": "__address__",
                                          "replacement": "127.0.0.1:9121"}
    environment = rendered["redis-exporter.default"].read_text()
    assert ('ARGS="--web.listen-address=127.0.0.1:9121 --redis.addr= --connection-timeout=5s"'
            in environment)
    assert 'REDIS_PASSWORD="p\\"ss\\\\word-0123456789"' in environment
    config["rule_files"] = [str(RULES / "tandem.rules.yml")]
    rendered["prometheus.yml"].write_text(yaml.safe_dump(config))
    checked = run(["promtool", "check", "config", str(rendered["prometheus.yml"])])
    assert checked.returncode == 0, checked.stdout


def test_the_grafana_dashboard_queries_the_recorded_series():
    dashboard = json.loads((REPO / "monitoring/grafana/tandem.json").read_text())
    recorded = {r["record"] for g in yaml.safe_load((RULES / "tandem.rules.yml").read_text())
                ["groups"] for r in g["rules"] if "record" in r}
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert any(name in target["expr"] for name in recorded | {"tandem_worker_in_flight"}), \
                (panel["title"], target["expr"])
