"""ansible/ without a host: ansible-lint (production profile) and yamllint pass, the playbooks parse
with both inventories, the tandem_lb role renders the one HAProxy template with the defaults of
haproxy/defaults.yml (and renders it exactly as the test harness does), and the example
inventory gives HAProxy one server per instance."""

import json
import pathlib
import re
import subprocess

import yaml

from tests.harness import config

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO_ROOT / "ansible"
LB_DEFAULTS = ANSIBLE_DIR / "roles/tandem_lb/defaults/main"
APP_DEFAULTS = ANSIBLE_DIR / "roles/tandem_app/defaults/main.yml"
# The tandem_lb role's own variables, beside the template's.
LB_ROLE_ONLY = {"tandem_lb_packages", "tandem_lb_config_path", "tandem_lb_retire_drain_seconds",
                "tandem_lb_tls_certificates", "tandem_lb_tls_self_signed_names",
                "tandem_lb_tls_self_signed_days", "tandem_lb_tls_self_signed_renew_days"}
# The documented exceptions to ansible-lint's production profile (noqa comments), each with why.
LINT_EXCEPTIONS = {
    # ansible.builtin.systemd has no reset-failed.
    ("roles/tandem_app/tasks/instances.yml", "command-instead-of-module"),
}


def run(argv, cwd=ANSIBLE_DIR, **kwargs):
    return subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=300, check=False,
                          env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/root",
                               "LANG": "C.UTF-8", "ANSIBLE_NOCOLOR": "1",
                               "ANSIBLE_FORCE_COLOR": "0", "NO_COLOR": "1",
                               "PYTHONDONTWRITEBYTECODE": "1"}, **kwargs)


def load(path):
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def test_ansible_lint_passes_with_the_production_profile():
    result = run(["ansible-lint", "--nocolor"])
    print(result.stdout)
    assert result.returncode == 0, result.stdout
    assert "Passed with production profile" in result.stdout, result.stdout
    exceptions = set()
    for path in ANSIBLE_DIR.rglob("*.yml"):
        for rule in re.findall(r"#\s*noqa:\s*([\w\[\]-]+)", path.read_text()):
            exceptions.add((str(path.relative_to(ANSIBLE_DIR)), rule))
    assert exceptions == LINT_EXCEPTIONS


def test_yamllint_passes():
    result = run(["yamllint", "--strict", "--config-file", ".yamllint", ".",
                  str(REPO_ROOT / "haproxy/defaults.yml")])
    assert result.returncode == 0, result.stdout


def test_playbooks_parse_with_both_inventories():
    for inventory in ("inventories/local", "inventories/example"):
        result = run(["ansible-playbook", "-i", inventory, "--syntax-check", "deploy.yml",
                      "rolling-restart.yml"])
        assert result.returncode == 0, result.stdout


def test_tandem_lb_defaults_are_haproxy_defaults():
    """haproxy/defaults.yml is the one file of the template's defaults: the role reads it through
    a link in defaults/main/, beside its own (packages, paths, certificates)."""
    assert (LB_DEFAULTS / "haproxy.yml").resolve() == config.DEFAULTS_PATH.resolve()
    template_defaults = config.load_defaults()
    role_defaults = {}
    for part in sorted(LB_DEFAULTS.glob("*.yml")):
        role_defaults.update(load(part))
    assert set(role_defaults) - set(template_defaults) == LB_ROLE_ONLY
    assert set(template_defaults) - set(role_defaults) == set()
    for name, value in template_defaults.items():
        assert role_defaults[name] == value, f"{name}: role {role_defaults[name]!r}, " \
                                             f"haproxy/defaults.yml {value!r}"


def test_tandem_app_falls_back_on_the_same_lb_settings():
    """The rolling restart reaches HAProxy with tandem_lb's settings, or with these fallbacks when
    the inventory leaves them to the tandem_lb role: they must be haproxy/defaults.yml's."""
    defaults = config.load_defaults()
    app = load(APP_DEFAULTS)
    for app_name, lb_name in (("tandem_app_lb_backend", "tandem_lb_backend_name"),
                              ("tandem_app_lb_socket", "tandem_lb_admin_socket"),
                              ("tandem_app_lb_cookie", "tandem_lb_cookie_name")):
        match = re.fullmatch(r"\{\{ %s \| default\('([^']*)'\) \}\}" % lb_name, app[app_name])
        assert match, app[app_name]
        assert match.group(1) == defaults[lb_name], (app_name, match.group(1), defaults[lb_name])
    assert "tandem_lb_port | default(%d)" % defaults["tandem_lb_port"] in app["tandem_app_lb_url"]


def test_the_role_renders_the_one_template_as_the_harness_does(tmp_path):
    """roles/tandem_lb/templates/haproxy.cfg.j2 and errorfile.http.j2 are links to haproxy/'s
    (no second copy); the role's own errorfile tasks (tasks/errorfiles.yml: the template lookup,
    written by library/tandem_files.py) and Ansible's template module (the configuration) render
    them, with the role's defaults, byte for byte as tests/harness/config.py does with
    haproxy/defaults.yml; and haproxy -c accepts the result. Only the errorfiles' directory
    is moved into the test's own."""
    templates = ANSIBLE_DIR / "roles/tandem_lb/templates"
    for name in ("haproxy.cfg.j2", "errorfile.http.j2"):
        link = templates / name
        assert link.is_symlink(), name
        assert link.resolve() == (REPO_ROOT / "haproxy" / name).resolve()
    copies = [p for pattern in ("*.cfg.j2", "errorfile*.j2") for p in REPO_ROOT.rglob(pattern)
              if not p.is_symlink() and "build" not in p.relative_to(REPO_ROOT).parts[0]]
    assert sorted(copies) == [REPO_ROOT / "haproxy/errorfile.http.j2",
                              REPO_ROOT / "haproxy/haproxy.cfg.j2"], copies
    errors = tmp_path / "errors"
    tls = tmp_path / "tls"
    overrides = {"tandem_lb_errorfiles_dir": str(errors), "tandem_lb_tls_dir": str(tls)}
    playbook = tmp_path / "errorfiles.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "Render the errorfiles and the certificates as the tandem_lb role does",
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(part) for part in sorted(LB_DEFAULTS.glob("*.yml"))],
        "tasks": [{"name": "Render them", "ansible.builtin.import_role": {
            "name": "tandem_lb", "tasks_from": "errorfiles"}},
                  {"name": "Make the self-signed certificate", "ansible.builtin.import_role": {
                      "name": "tandem_lb", "tasks_from": "tls"}}],
    }]))
    # The role's reload handler skips a HAProxy its play has just started: here, where none runs,
    # the play says it has.
    result = run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(playbook),
                  "-e", json.dumps({**overrides, "tandem_lb_started": {"changed": True}})])
    assert result.returncode == 0, result.stdout
    # No certificate in the inventory: one self-signed PEM, named by the host, and the list.
    assert sorted(p.name for p in tls.iterdir()) == ["certificates.list", "localhost.pem",
                                                     "self-signed.crt", "self-signed.key"]
    names = run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                 str(tls / "localhost.pem")]).stdout
    assert "DNS:localhost" in names and "IP Address:127.0.0.1" in names, names
    statuses = config.load_defaults()["tandem_lb_error_messages"]
    assert sorted(p.name for p in errors.iterdir()) == sorted(f"{s}.http" for s in statuses)
    for status in statuses:
        assert (errors / f"{status}.http").read_text() == config.render_errorfile(
            status, overrides), status
    dest = tmp_path / "haproxy.cfg"
    result = run(["ansible", "localhost", "-i", "localhost,", "-c", "local",
                  "-m", "ansible.builtin.template",
                  "-a", f"src={templates / 'haproxy.cfg.j2'} dest={dest}",
                  *[arg for part in sorted(LB_DEFAULTS.glob("*.yml")) for arg in ("-e", f"@{part}")],
                  "-e", json.dumps(overrides)])
    assert result.returncode == 0, result.stdout
    assert dest.read_text() == config.render(overrides)
    config.validate(dest)


def test_example_inventory_lists_every_instance_once():
    result = run(["ansible", "-i", "inventories/example", "tandem_lb", "-m",
                  "ansible.builtin.debug", "-a", "var=tandem_lb_backend_servers"])
    assert result.returncode == 0, result.stdout
    # One answer per balancer ("lb1.example.net | SUCCESS => {...}"): every one balances the same.
    answers = [json.loads(block)["tandem_lb_backend_servers"] for block in
               re.findall(r"=> (\{.*?^\})", result.stdout, re.MULTILINE | re.DOTALL)]
    assert len(answers) == 2 and answers[0] == answers[1], result.stdout
    servers = answers[0]
    ids = [server["id"] for server in servers]
    assert len(servers) == 4 and len(set(ids)) == 4, servers
    assert {(server["host"], server["port"]) for server in servers} == {
        ("10.0.0.21", 3001), ("10.0.0.21", 3002), ("10.0.0.22", 3001), ("10.0.0.22", 3002)}
    # Server names are unique across hosts by being named after host and instance.
    for path in (ANSIBLE_DIR / "inventories/example/host_vars").glob("*.yml"):
        host = path.name.split(".")[0]
        for number, instance in enumerate(load(path)["tandem_app_instances"], start=1):
            assert instance["id"] == f"{host}-{number}", (path.name, instance)


def test_up_prints_the_https_address_first():
    """./up (tests/harness/ansible_guest.py up) names the HTTPS front it deployed, or the plain
    one when HTTPS is off."""
    from tests.harness.ansible_guest import front_lines

    assert front_lines(80, 443).splitlines()[0] == "  https://127.0.0.1/api/whoami"
    assert "port\n      80 redirects there" in front_lines(80, 443)
    assert front_lines(80, 8443).splitlines()[0] == "  https://127.0.0.1:8443/api/whoami"
    assert front_lines(8080, 0).splitlines()[0] == "  http://127.0.0.1:8080/api/whoami"
    up = (REPO_ROOT / "up").read_text()
    assert "https://127.0.0.1:$https_port/api/whoami" in up and "--https-port" in up


def test_example_instances_find_redis_through_the_sentinels():
    """Three Redis hosts: the instances get every Sentinel in a sentinel:// URL (the password
    percent-encoded, for the data nodes and the Sentinels alike), or redis:// to the first host
    with redis_sessions_through_sentinel false; and their firewall lets in every Redis host."""
    def ask(var, *extra):
        result = run(["ansible", "-i", "inventories/example", "app1.example.net", "-m",
                      "ansible.builtin.debug", "-a", f"var={var}",
                      "-e", "vault_redis_password=pass/word:0123456789", *extra])
        assert result.returncode == 0, result.stdout
        return json.loads(result.stdout.split("=>", 1)[1])[var]

    assert ask("tandem_app_session_store") == (
        "sentinel://:pass%2Fword%3A0123456789@10.0.0.30:26379,10.0.0.31:26379,10.0.0.32:26379"
        "/tandem/0")
    assert ask("tandem_app_session_store", "-e", "redis_sessions_through_sentinel=false") == \
        "redis://:pass%2Fword%3A0123456789@10.0.0.30:6379/0"
    assert {"10.0.0.30", "10.0.0.31", "10.0.0.32"} <= set(ask("tandem_app_ip_address_allow"))


def test_keepalived_configuration_of_the_example_passes_keepalived_t(tmp_path):
    """roles/tandem_vip's keepalived.conf, rendered for each balancer of the example inventory,
    passes `keepalived -t` (the role's validate); each names the other as its one unicast peer,
    starts as BACKUP with nopreempt, and has its own priority. The interface is one of this
    machine's (keepalived -t refuses one that does not exist)."""
    interface = next(path.name for path in sorted(pathlib.Path("/sys/class/net").iterdir())
                      if path.name != "lo")
    template = ANSIBLE_DIR / "roles/tandem_vip/templates/keepalived.conf.j2"
    # The role's defaults, as extra variables, less those the inventory sets (which extra
    # variables would override).
    role_defaults = {name: value for name, value in
                     load(ANSIBLE_DIR / "roles/tandem_vip/defaults/main.yml").items()
                     if name not in ("tandem_vip_address", "tandem_vip_priority")}
    priorities = {}
    for balancer, peer in (("lb1", "10.0.0.11"), ("lb2", "10.0.0.10")):
        dest = tmp_path / f"{balancer}.conf"
        result = run(["ansible", "-i", "inventories/example", f"{balancer}.example.net",
                      "-c", "local", "-m", "ansible.builtin.template",
                      "-a", f"src={template} dest={dest}", "-e", json.dumps(role_defaults),
                      "-e", f"tandem_vip_found_interface={interface}",
                      "-e", "ansible_python_interpreter=/usr/bin/python3"])
        assert result.returncode == 0, result.stdout
        text = dest.read_text()
        checked = subprocess.run(["keepalived", "-t", "-f", str(dest)], capture_output=True,
                                 text=True, timeout=30, check=False)
        assert checked.returncode == 0, checked.stderr + text
        peers = re.search(r"unicast_peer \{\s*([^}]*)\}", text).group(1).split()
        assert peers == [peer], text
        assert re.search(r"^\s*state BACKUP$", text, re.MULTILINE)
        assert re.search(r"^\s*nopreempt$", text, re.MULTILINE)
        assert "vrrp_version 3" in text and "auth_pass" not in text
        priorities[balancer] = int(re.search(r"^\s*priority (\d+)$", text, re.MULTILINE).group(1))
    assert priorities == {"lb1": 150, "lb2": 100}
