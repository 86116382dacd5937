"""Fixtures of the multi-host tests (tests/multihost/).

`fleet` (one for the whole run: test_fleet.py, test_ha.py and test_shrink.py are one story,
which tests/CMakeLists.txt runs in that order): ansible/inventories/example deployed onto real
hosts on this machine. One systemd guest per host of the inventory (tests/harness/fleet.py: each
in a network namespace of its own on a private bridge, with its own sshd), the inventory's
addresses moved into the fleet's subnet and its secrets supplied
(tests/harness/fleet_inventory.py), and the package under test (CTest's system.deb fixture: TANDEM_BUILD_DIR and TANDEM_VERSION, or TANDEM_DEB).
Everything is powered off and removed at the end of the run, also on a failure or an
interrupted run; a killed run is cleaned by the fleet's reaper, or by the next run.

`report(line)`, sys.path and signal handling come from tests/conftest.py.
"""

import json
import pathlib
import re
import resource
import secrets
import subprocess

import pytest
import yaml

from tests.harness.ansible_guest import ANSIBLE_DIR
from tests.harness.fleet import Fleet
from tests.harness.fleet_inventory import FleetInventory

EXAMPLE = ANSIBLE_DIR / "inventories/example"
# The units each group's roles configure and start; the fleet's guests boot with them masked, as a
# fresh server has them installed but not running, and unmasks them on the hosts of that group.
GROUP_UNITS = {
    "tandem_lb": ("haproxy.service", "keepalived.service"),
    "tandem_redis": ("redis-sentinel.service",),
    "tandem_monitoring": ("prometheus.service", "prometheus-alertmanager.service",
                          "prometheus-blackbox-exporter.service",
                          "prometheus-redis-exporter.service"),
    "all": ("prometheus-node-exporter.service",),
}


class Deployment:
    """The fleet, its inventory and what the tests deploy with."""

    def __init__(self, fleet, inventory, workdir, deb, secret_values, site, ca_file):
        self.fleet = fleet
        self.inventory = inventory
        self.workdir = workdir
        self.deb = deb
        self.secrets = secret_values
        self.site = site  # the name the example's certificate is for
        self.ca_file = ca_file  # that certificate, which clients trust
        # The release deployed, named on the command line as an operator does (the upgrade test
        # moves it on), and a value bound to this machine rather than to the inventory: HAProxy's
        # maxconn within the open files a guest may have (as inventories/local does: HAProxy
        # refuses to start above it).
        self.release = deb
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        example = yaml.safe_load((EXAMPLE / "group_vars/all.yml").read_text())
        maxconn = example["tandem_lb_maxconn"]
        if hard != resource.RLIM_INFINITY:
            maxconn = min(maxconn, (hard - 256) // 2)
        # The balancers' virtual address moves into the fleet's subnet as the hosts' do.
        # And the per-source limits, raised: all the load comes from this machine's one address
        # on the bridge, standing in for many visitors, which the limits would count as one
        # client. When a guest stalls for a moment on these shared cores, the paced load opens a
        # connection for every request due meanwhile and went over the 100 connections one
        # address may hold: HAProxy reset them at accept, as it should for one client. The
        # limits themselves are drilled in tests/stack/test_abuse_*.py.
        self.machine_vars = {
            "tandem_lb_maxconn": maxconn,
            "tandem_lb_source_maxconn": 2000,
            "tandem_lb_source_connection_rate": 20000,
            "tandem_vip_address": inventory.move(example["tandem_vip_address"]),
        }
        self.virtual_address = self.machine_vars["tandem_vip_address"].split("/")[0]

    def playbook(self, playbook, *args, without=(), extra_vars=None):
        """ansible-playbook over SSH with the example inventory (less the hosts `without`) and
        this machine's values; returns an ansible_guest.PlaybookRun."""
        values = {"tandem_app_package": str(self.release), **self.machine_vars,
                  **(extra_vars or {})}
        return self.fleet.playbook(playbook, *self.inventory.args(without=without),
                                   "-e", json.dumps(values), *args)


def example_certificate(workdir, name):
    """A certificate and key for `name` (ECDSA P-256, 30 days), made here: the test's stand-in for
    the vaulted one. Returns (PEM of certificate then key, path of the certificate)."""
    cert, key = workdir / "site.crt", workdir / "site.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "30", "-subj", f"/CN={name}", "-addext",
                    f"subjectAltName=DNS:{name}"], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert.read_text() + key.read_text(), cert


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # A failed test shows what the hosts' units said.
    deployment = getattr(item, "funcargs", {}).get("fleet")
    if report.failed and deployment is not None:
        for host in deployment.fleet.hosts.values():
            if not host.running or host.guest.init_pid is None:
                continue
            try:
                journal = host.guest.journal("-u", "tandem@*", "-u", "haproxy", "-u",
                                             "redis-server", "-u", "redis-sentinel", "-u",
                                             "keepalived", "-u", "tandem-lb-take-states",
                                             "-n", "40", "-o", "short-monotonic")
            except Exception as error:  # Reporting must not hide the failure itself.
                journal = f"(journal unavailable: {error})"
            report.sections.append((f"{host.short} journal", journal))


@pytest.fixture(scope="session")
def fleet(tmp_path_factory):
    from tests.system.deployment import package_path

    deb = package_path()
    workdir = tmp_path_factory.mktemp("fleet")
    group_vars = (EXAMPLE / "group_vars/all.yml").read_text()
    site = yaml.safe_load(group_vars)["tandem_lb_tls_certificates"][0]["name"]
    pem, ca_file = example_certificate(workdir, site)
    secret_values = {"vault_redis_password": secrets.token_hex(16),
                     f"vault_{site.replace('.', '_')}_pem": pem}
    # Every secret the inventory refers to is supplied, and nothing else.
    referred = set(re.findall(r"\bvault_\w+", "".join(
        path.read_text() for path in EXAMPLE.rglob("*.yml"))))
    assert referred == set(secret_values), (referred, set(secret_values))
    inventory = FleetInventory(EXAMPLE, workdir, secrets=secret_values)
    with Fleet(inventory.addresses(), units=inventory.units(GROUP_UNITS)) as booted:
        if booted.swept:
            print(f"removed what earlier runs left: {booted.swept}")
        yield Deployment(booted, inventory, pathlib.Path(workdir), deb, secret_values, site,
                         ca_file)
