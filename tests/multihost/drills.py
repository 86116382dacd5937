"""What the multi-host drills share (tests/multihost/test_*.py): the deployment's view through a
balancer's runtime API, and the load through a balancer (Traffic) with HAProxy's view read
meanwhile. Balancer-facing helpers take the balancer (lb1 by default) and the address clients
reach (lb1's by default, or the pair's virtual address)."""

import json
import re
import time

import yaml

from tests.harness import https_load, load
from tests.harness.ansible_guest import ANSIBLE_DIR
from tests.harness.redis import (RedisError, check_sessions, check_sessions_across_failures,
                                 command, session_count)
from tests.harness.runtime_api import RotationMonitor, RuntimeApi
from tests.harness.waiting import wait_until

RATE = 100  # GET /api/whoami per second through the balancer
CLIENTS = 50  # sticky session clients
# Between two rounds of one POST per client. A round of 50 HTTPS requests takes 1-1.5 s here
# under the rest of the load: each client sends one about every 2 s, 25 POST/s in all.
ROUND_PAUSE = 0.5
BACKEND = "tandem"  # haproxy/defaults.yml's tandem_lb_backend_name, which the example keeps
ADMIN_SOCKET = "/run/haproxy/admin.sock"
LB = "lb1.example.net"
LBS = ("lb1.example.net", "lb2.example.net")
EXAMPLE = ANSIBLE_DIR / "inventories/example"  # what conftest.py deploys
APP1, APP2 = "app1.example.net", "app2.example.net"
# The instances of each application host, as its host_vars list them.
INSTANCES = {host: yaml.safe_load((EXAMPLE / f"host_vars/{host}.yml").read_text())
             ["tandem_app_instances"] for host in (APP1, APP2)}
IDS = {host: [instance["id"] for instance in instances] for host, instances in INSTANCES.items()}
ALL_IDS = IDS[APP1] + IDS[APP2]
REDIS_HOSTS = ("redis1.example.net", "redis2.example.net", "redis3.example.net")
REDIS_PORT = 6379  # group_vars/all.yml's redis_port
SENTINEL_PORT = 26379  # and redis_sentinel_port
MASTER_NAME = "tandem"  # and redis_sentinel_master_name
MONITORING = "mon1.example.net"


# --- the deployment's view ------------------------------------------------------------------------

# ansible-playbook's default output: a task's header, then a line per host that it changed.
TASK_LINE = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.+?)\] \*+$")
CHANGED_LINE = re.compile(r"^changed: \[([^\]\s]+)")


def lb_api(fleet, lb=LB):
    """The runtime API of a balancer's HAProxy (lb1's by default), reached through its guest."""
    return RuntimeApi(fleet.fleet[lb].guest.path(ADMIN_SOCKET))


def statuses(fleet, lb=LB):
    return lb_api(fleet, lb).statuses(BACKEND)


def wait_up(fleet, servers, timeout=30.0, lb=LB):
    """Until HAProxy (lb1's by default) has exactly `servers`, each fully UP (its checks
    passed)."""
    return wait_until(lambda: statuses(fleet, lb), timeout, 0.2, f"{servers} UP in HAProxy",
                      holds=lambda seen: set(seen) == set(servers)
                      and all(status == "UP" for status in seen.values()))


def require_ok(run):
    assert run.ok, f"{' '.join(run.argv)} exited {run.returncode}:\n{run.tail(100)}"


def address(fleet, host):
    return fleet.fleet[host].address


def tls(fleet, target=None):
    """How clients reach the site: its name, resolved as DNS would to `target` (an address: the
    balancers' virtual one, say; lb1's by default), verified against the inventory's
    certificate."""
    return {"ca_file": str(fleet.ca_file),
            "resolve": (f"{fleet.site}:443:{target or address(fleet, LB)}",)}


def site_url(fleet, path):
    return f"https://{fleet.site}{path}"


def guest_get(fleet, host, url):
    """GET url from inside a host (the instances let their own host in); the answer's JSON."""
    return json.loads(fleet.fleet[host].run(["curl", "-sS", "--max-time", "5", url]).stdout)


def backend_retries(fleet, lb=LB):
    """The backend's retries and redispatches so far (show stat's wretr, wredis) in a balancer's
    HAProxy, and the pid of the process that counted them."""
    api = lb_api(fleet, lb)
    row = next(row for row in api.show_stat()
               if row["pxname"] == BACKEND and row["svname"] == "BACKEND")
    return {"wretr": int(row["wretr"] or 0), "wredis": int(row["wredis"] or 0),
            "pid": api.worker_pid()}


def prometheus_targets(fleet):
    """instance_id of every instance the monitoring host's Prometheus scrapes (job tandem)."""
    answer = guest_get(fleet, MONITORING, "http://127.0.0.1:9090/api/v1/targets?state=active")
    return sorted(target["labels"]["instance_id"] for target in answer["data"]["activeTargets"]
                  if target["labels"].get("job") == "tandem")


# --- the sessions' Redis --------------------------------------------------------------------------

def redis_command(fleet, host, port, *args):
    return command(port, *args, password=fleet.secrets["vault_redis_password"],
                   host=address(fleet, host), timeout=5.0)


def redis_host_at(fleet, ip):
    """The Redis host whose address is ip."""
    return next(host for host in REDIS_HOSTS if address(fleet, host) == ip)


def named_primary(fleet, sentinel_host):
    """The address the Sentinel on that host names for the master, or None if it does not
    answer."""
    try:
        return redis_command(fleet, sentinel_host, SENTINEL_PORT, "SENTINEL",
                             "get-master-addr-by-name", MASTER_NAME)[0]
    except (RedisError, OSError):
        return None


def stored_count(fleet):
    """A session's count as the primary the Sentinels name now holds it."""
    primary = next(filter(None, (named_primary(fleet, host) for host in REDIS_HOSTS)))
    return lambda session_id: session_count(REDIS_PORT, session_id,
                                            password=fleet.secrets["vault_redis_password"],
                                            host=primary)


def check_counts(fleet, report, traffic, strict=True):
    """Every sticky client's session went on 1, 2, 3... (strict), or across failures (see
    check_sessions_across_failures), up to what Redis holds."""
    if strict:
        problems, moved = check_sessions(traffic.clients, stored_count(fleet))
        skipped = 0
    else:
        problems, moved, skipped = check_sessions_across_failures(traffic.clients,
                                                                  stored_count(fleet))
    counts = [len([o for o in client.outcomes if o.ok]) for client in traffic.clients]
    report(f"{traffic.name}: {CLIENTS - len(problems)} of {CLIENTS} session clients with every "
           f"count in order and equal to Redis's ({min(counts)}..{max(counts)} answers each"
           f"{f', {skipped} numbers skipped by failed requests that had counted' if skipped else ''}"
           f"); {moved} moved to another instance")
    for problem in problems[:5]:
        report(f"{traffic.name}:   {problem}")
    assert not problems, "\n".join(problems)
    return moved


# --- load through the balancer, and what HAProxy saw ----------------------------------------------

def last_instance(client):
    """The instance that answered the client's last successful request ("" if none did)."""
    return next((o.instance for o in reversed(client.outcomes) if o.ok), "")


class Traffic:
    """RATE GET /api/whoami per second and CLIENTS sticky session clients over HTTPS through a
    balancer (https_load: Python's ssl, each client one connection kept alive), and HAProxy's
    servers read every 100 ms, from entering the `with` (after every client has its session)
    until leaving it (a second later). `target`: the address the site's name resolves to (lb1's
    by default; the balancers' virtual address, say); `lb`: the balancer whose HAProxy is read
    (lb1)."""

    def __init__(self, fleet, name, warm=2.0, after=1.0, target=None, lb=LB):
        self.fleet = fleet
        self.name = name
        self.target = target
        self.lb = lb
        self.warm = warm
        self.after = after
        self.monitor = self.gets = self.rounds = None
        self.clients = []
        self.retries = {}  # HAProxy's backend counters over the run: retries, redispatches
        self.get_outcomes = []
        self.began = self.ended = None

    def __enter__(self):
        options = tls(self.fleet, self.target)
        self.retries = backend_retries(self.fleet, self.lb)
        try:
            self.monitor = RotationMonitor(self.fleet.fleet[self.lb].guest.path(ADMIN_SOCKET),
                                           BACKEND).__enter__()
            self.gets = https_load.ContinuousLoad(site_url(self.fleet, "/api/whoami"), RATE,
                                       **options).__enter__()
            url = site_url(self.fleet, "/api/session")
            self.clients = [https_load.Client(name=f"{self.name}-{n}", **options)
                            for n in range(CLIENTS)]
            self.rounds = https_load.Rounds(
                self.clients, lambda client, n: load.session_post(url, client.name, n + 1),
                ROUND_PAUSE).__enter__()
            # Every client has its session and its instance before the drill: its first answer
            # (50 new TLS connections take a second or more on these cores), and at least `warm`
            # seconds of load.
            warmed = time.monotonic() + self.warm
            wait_until(lambda: all(last_instance(client) for client in self.clients), 60.0, 0.1,
                       "an answer for every session client")
            time.sleep(max(0.0, warmed - time.monotonic()))
        except BaseException:
            self._stop()
            raise
        self.began = time.monotonic()
        return self

    def __exit__(self, kind, *rest):
        self.ended = time.monotonic()
        if kind is None:
            time.sleep(self.after)
        self._stop()
        if kind is not None:
            return
        # The counters start again at 0 in the process a reload starts: then only its own count.
        after = backend_retries(self.fleet, self.lb)
        reloaded = after["pid"] != self.retries["pid"]
        self.retries = {name: after[name] - (0 if reloaded else self.retries[name])
                        for name in ("wretr", "wredis")}
        self.retries["since"] = "since HAProxy's reload" if reloaded else "in all"

    def _stop(self):
        try:
            if self.rounds is not None:
                self.rounds.stop()
        finally:
            if self.gets is not None:
                self.get_outcomes = self.gets.stop()
            if self.monitor is not None:
                self.monitor.__exit__(None, None, None)
            for client in self.clients:
                client.close()

    @property
    def posts(self):
        return [outcome for client in self.clients for outcome in client.outcomes]

    def summarize(self, report):
        """Prints every figure: requests and failures, who answered, the servers in rotation over
        time and the states each went through. Returns (failed GETs, failed POSTs, in rotation
        at each sample)."""
        gets, posts = self.get_outcomes, self.posts
        failed_gets = [o for o in gets if not o.ok]
        failed_posts = [o for o in posts if not o.ok]
        seconds = gets[-1].scheduled - gets[0].scheduled if len(gets) > 1 else 0.0
        post_seconds = (max(o.finished for o in posts) - min(o.started for o in posts)
                        if posts else 0.0)
        answered = {server: sum(1 for o in gets + posts if o.ok and o.instance == server)
                    for server in sorted({o.instance for o in gets + posts if o.ok})}
        report(f"{self.name}: {len(gets)} GET in {seconds:.1f} s ({len(gets) / max(seconds, 1):.1f}"
               f"/s), {len(failed_gets)} failed; {len(posts)} POST /api/session from {CLIENTS} "
               f"sticky clients ({len(posts) / max(post_seconds, 1):.1f}/s), "
               f"{len(failed_posts)} failed; {sum(o.resent for o in gets + posts)} sent again "
               f"after their kept-alive connection died; answered by {answered}; HAProxy "
               f"retried {self.retries['wretr']} and redispatched {self.retries['wredis']} "
               f"({self.retries['since']})")
        for failure in (failed_gets + failed_posts)[:8]:
            report(f"{self.name}:   failed at +{failure.started - self.began:.2f} s: "
                   f"{failure.request.method} status {failure.status} "
                   f"{failure.error or failure.body[:100]!r}")
        in_rotation = self.monitor.in_rotation()
        report(f"{self.name}: HAProxy read {len(self.monitor.samples)} times (longest gap "
               f"{self.monitor.longest_gap() * 1000:.0f} ms, {self.monitor.errors} errors); "
               f"instances in rotation: min {min(in_rotation, default=0)}, "
               f"max {max(in_rotation, default=0)}")
        previous = {}
        for offset, count, seen in self.monitor.timeline(self.began):
            changed = {server: status or "(absent)" for server, status in
                       {**{s: "" for s in previous}, **seen}.items()
                       if previous.get(server) != status}
            report(f"{self.name}:   {offset:+7.1f} s  {count} in rotation  "
                   + ", ".join(f"{server} {status}" for server, status in sorted(changed.items())))
            previous = seen
        return failed_gets, failed_posts, in_rotation

    def answered_by(self, server, after=None):
        return sum(1 for o in self.get_outcomes + self.posts
                   if o.ok and o.instance == server and (after is None or o.started > after))


def report_run(report, name, run):
    recaps = {host.split(".")[0]: f"ok={r['ok']} changed={r['changed']} failed={r['failed']}"
              for host, r in run.recaps().items()}
    report(f"{name}: ansible-playbook {run.argv[1]} took {run.seconds:.1f} s, exit "
           f"{run.returncode}; {recaps}")


def changed_tasks(run):
    """{host: [task, ...]}: the tasks and handlers ("role : name") that reported changed on each
    host, from the playbook's own output (a task delegated elsewhere counts for its host)."""
    changed, task = {}, None
    for line in run.output.splitlines():
        match = TASK_LINE.match(line)
        if match:
            task = match.group(1)
            continue
        match = CHANGED_LINE.match(line)
        if match and task:
            tasks = changed.setdefault(match.group(1), [])
            if task not in tasks:
                tasks.append(task)
    return changed
