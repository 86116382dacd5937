"""The deployment under measurement: the systemd guest ./up boots, deployed by ansible/deploy.yml
over SSH with the package under test, and the processes of the guest, seen from this machine."""

import os

from tests.harness import procstat
from tests.harness.ansible_guest import PLAIN_HTTP, AnsibleGuest

from bench.scaling.measured import PER_SOURCE_OUT_OF_REACH, BenchError

# The local inventory's instances: id, port (ansible/inventories/local).
INSTANCES = {"app-1": 3001, "app-2": 3002}
LB_URL = "http://127.0.0.1:80"
# The names the guest's processes are grouped under, in the order the report lists them. "front"
# is what a request through :80 adds: HAProxy and the journal that receives its log.
FRONT = ("haproxy", "journald")
GROUPS = FRONT + tuple(INSTANCES) + ("guest-others",)


class Deployment:
    """A context manager: the guest booted and deployed; powered off and removed on exit."""

    def __init__(self, deb, settings):
        self.deb = deb
        # wrk is one client address sending tens of thousands of requests a second: the
        # per-source limits would answer it 429. Their tables and rules stay, as deployed, so that
        # their cost is measured; only their thresholds are out of wrk's reach.
        self.extra_vars = {"tandem_app_package": str(deb), **PER_SOURCE_OUT_OF_REACH, **PLAIN_HTTP,
                           **settings}
        self.target = None

    def __enter__(self):
        self.target = AnsibleGuest(deb=self.deb)
        try:
            self.target.start()
            print(f"== deploying {self.deb.name} into the guest {self.target.guest.name} "
                  "(ansible-playbook deploy.yml over SSH) ...", flush=True)
            run = self.target.playbook("deploy.yml", extra_vars=self.extra_vars)
            if not run.ok:
                raise BenchError(f"ansible-playbook deploy.yml failed (exit {run.returncode}):\n"
                                 f"{run.tail(40)}")
            print(f"   deployed in {run.seconds:.0f} s", flush=True)
        except BaseException:
            self.target.close()
            raise
        return self

    def __exit__(self, *exc):
        self.target.close()

    @property
    def guest(self):
        return self.target.guest

    def ctl(self, *argv):
        """tandemctl in the guest, as an operator runs it there."""
        return self.guest.run(["tandemctl", *argv], timeout=120)

    def haproxy_version(self):
        return self.guest.run(["haproxy", "-v"]).stdout.split("\n")[0].split(" - ")[0]

    def haproxy_threads(self):
        """Threads of HAProxy's worker(s): what nbthread came to on this machine."""
        group = {str(pid) for pid in self.processes()["haproxy"]}
        # A worker is the HAProxy whose parent (field 4 of /proc/PID/stat) is the master.
        workers = [int(pid) for pid in group
                   if ((procstat.stat_fields(pid) or [None, None])[1]) in group]
        return [procstat.thread_count(pid) for pid in workers]

    def processes(self):
        """{group: [host pids]} of the guest's processes, by GROUPS; raises if HAProxy, the
        journal or an instance is not running."""
        namespace = os.readlink(f"/proc/{self.guest.init_pid}/ns/pid")
        groups = {name: [] for name in GROUPS}
        by_port = {f"--port\0{port}".encode(): name for name, port in INSTANCES.items()}
        for pid in procstat.pids():
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") != namespace:
                    continue
                with open(f"/proc/{pid}/comm", encoding="utf-8") as comm:
                    name = comm.read().strip()
            except OSError:
                continue  # Gone meanwhile.
            cmdline = procstat.cmdline(pid) or b""
            if name == "haproxy":
                groups["haproxy"].append(pid)
            elif name == "systemd-journal":
                groups["journald"].append(pid)
            elif name == "tandem-server":
                instance = next((i for flag, i in by_port.items() if flag in cmdline), None)
                groups[instance or "guest-others"].append(pid)
            else:
                groups["guest-others"].append(pid)
        missing = [name for name in FRONT + tuple(INSTANCES) if not groups[name]]
        if missing:
            raise BenchError(f"not running in the guest: {', '.join(missing)}\n"
                             + self.guest.journal("-u", "haproxy", "-u", "tandem@*", "-n", "30"))
        return groups
