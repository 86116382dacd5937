"""The monitoring's files, checked without a deployment: the rules pass promtool's check and its
unit tests (every alert fires when it should and stays silent when it should), the configurations
the tandem_monitoring role renders for both inventories pass promtool and amtool, and the Grafana
dashboard's panels all carry a query of the recorded series."""

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


@pytest.mark.parametrize("inventory", ["local", "example"])
def test_the_rendered_configurations_pass_promtool_and_amtool(tmp_path, inventory):
    """The role's templates rendered by Ansible itself with the inventory's hosts and variables."""
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
            for name in ("prometheus.yml.j2", "alertmanager.yml.j2")],
    }]))
    result = run(["ansible-playbook", "-i", f"inventories/{inventory}", str(playbook),
                  "-e", "tandem_monitoring_alert_webhook_url=http://127.0.0.1:9/alerts",
                  "-e", "vault_redis_password=0123456789abcdef"], cwd=REPO / "ansible")
    assert result.returncode == 0, result.stdout
    config = yaml.safe_load((tmp_path / "prometheus.yml").read_text())
    jobs = {job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]]
            for job in config["scrape_configs"]}
    expected = 2 if inventory == "local" else 4  # The instances the balancer balances over.
    assert len(jobs["tandem"]) == expected, jobs
    assert jobs["haproxy"] and jobs["node"], jobs
    config["rule_files"] = [str(RULES / "tandem.rules.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    checked = run(["promtool", "check", "config", str(tmp_path / "prometheus.yml")])
    assert checked.returncode == 0, checked.stdout
    checked = run(["amtool", "check-config", str(tmp_path / "alertmanager.yml")])
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
