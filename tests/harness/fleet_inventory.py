"""An Ansible inventory deployed onto a test fleet (tests/harness/fleet.py): the inventory itself,
its group_vars and host_vars as they are, with only each host's address replaced by the fleet's
and the secrets supplied, never a second copy.

    inventory = FleetInventory(ANSIBLE_DIR / "inventories/example", secrets={...}, workdir=tmp)
    with Fleet(inventory.addresses(), units=inventory.units(GROUP_UNITS)) as fleet:
        fleet.playbook("deploy.yml", *inventory.args())
        fleet.playbook("deploy.yml", *inventory.args(without={"app2.example.net"}))

- Addresses: each host's ansible_host in hosts.yml (an IPv4 address) is moved into the fleet's
  subnet, keeping its last octet (10.0.0.21 becomes 10.77.0.21); move() does the same for an
  address that belongs to no one host (the balancers' virtual address), which the caller
  passes. Every other address the inventory uses must derive from ansible_host
  (group_vars/all.yml does: the instances' bind address, Redis's, the balancer's admin
  listener), so nothing else needs replacing.
- A generated inventory file, passed after the inventory (`-i INVENTORY -i GENERATED`), sets
  those ansible_host values (host variables: the later source wins) and the secrets, as group
  variables of `all` (the vault_* variables the inventory refers to; no other source defines
  them).
- args(without=...): the inventory as an operator has it once those hosts are deleted from it:
  a folder with hosts.yml less those hosts, and links to the inventory's own group_vars/ and
  host_vars/; its generated file lists only the hosts that are left.
"""

import ipaddress
import pathlib

import yaml

from .fleet import SUBNET


class FleetInventory:
    def __init__(self, inventory_dir, workdir, secrets=None, subnet=SUBNET):
        self.inventory_dir = pathlib.Path(inventory_dir).resolve()
        self.workdir = pathlib.Path(workdir)
        self.secrets = dict(secrets or {})
        self.subnet = subnet
        with open(self.inventory_dir / "hosts.yml", encoding="utf-8") as stream:
            self.tree = yaml.safe_load(stream)
        self.groups = {}  # group: [host, ...], "all" included
        self.original = {}  # host: its ansible_host in the inventory
        for group, body in self.tree.items():
            for host, host_vars in ((body or {}).get("hosts") or {}).items():
                self.groups.setdefault(group, []).append(host)
                address = (host_vars or {}).get("ansible_host")
                if address is not None:
                    if host in self.original and self.original[host] != address:
                        raise ValueError(f"{host} has two addresses in hosts.yml")
                    self.original[host] = address
        hosts = [host for members in self.groups.values() for host in members]
        self.groups["all"] = list(dict.fromkeys(hosts))
        missing = [host for host in self.groups["all"] if host not in self.original]
        if missing:
            raise ValueError(f"no ansible_host in hosts.yml for {missing}")

    def address(self, host):
        """The host's address in the fleet: the subnet's prefix, the inventory's last octet."""
        return self.move(self.original[host])

    def move(self, address):
        """Any address of the inventory's network (a host's, or a virtual address shared by
        hosts: "10.0.0.9/24") moved into the fleet's subnet the same way, keeping a prefix
        length if it has one (then the subnet's)."""
        bare, _, prefix = str(address).partition("/")
        last = ipaddress.ip_address(bare).packed[-1]
        moved = str(self.subnet.network_address + last)
        return f"{moved}/{self.subnet.prefixlen}" if prefix else moved

    def addresses(self):
        """{host: fleet address} of every host, in the inventory's order."""
        return {host: self.address(host) for host in self.groups["all"]}

    def hosts_of(self, group):
        return list(self.groups.get(group, []))

    def units(self, group_units):
        """{host: units} from {group: units}: what each host's roles configure."""
        found = {}
        for group, units in group_units.items():
            for host in self.hosts_of(group):
                found[host] = tuple(dict.fromkeys(found.get(host, ()) + tuple(units)))
        return found

    def args(self, without=()):
        """ansible-playbook's inventory arguments: the inventory (less the hosts `without`),
        then the generated file."""
        without = set(without)
        unknown = without - set(self.groups["all"])
        if unknown:
            raise ValueError(f"not in the inventory: {sorted(unknown)}")
        variant = self.workdir / ("inventory-without-" + "-".join(sorted(
            host.split(".")[0] for host in without)) if without else "inventory")
        variant.mkdir(parents=True, exist_ok=True)
        if without:
            inventory = variant / "inventory"
            inventory.mkdir(exist_ok=True)
            tree = {}
            for group, body in self.tree.items():
                body = dict(body or {})
                if "hosts" in body:
                    body["hosts"] = {host: host_vars for host, host_vars in
                                     (body["hosts"] or {}).items() if host not in without}
                tree[group] = body
            (inventory / "hosts.yml").write_text(
                "---\n# " + str(self.inventory_dir / "hosts.yml")
                + f", less {', '.join(sorted(without))} (tests/harness/fleet_inventory.py)\n"
                + yaml.safe_dump(tree, sort_keys=False))
            for folder in ("group_vars", "host_vars"):
                link = inventory / folder
                if not link.is_symlink():
                    link.symlink_to(self.inventory_dir / folder)
        else:
            inventory = self.inventory_dir
        generated = variant / "fleet.yml"
        hosts = {host: {"ansible_host": self.address(host)}
                 for host in self.groups["all"] if host not in without}
        generated.write_text(
            "---\n# Generated by tests/harness/fleet_inventory.py: the addresses of the test "
            f"fleet's hosts ({self.subnet}) and the secrets,\n# over {inventory}.\n"
            + yaml.safe_dump({"all": {"hosts": hosts, "vars": self.secrets}}, sort_keys=False))
        generated.chmod(0o600)  # It holds the secrets.
        return ["-i", str(inventory), "-i", str(generated)]
