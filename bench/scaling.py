#!/usr/bin/python3
"""Scaling benchmark: what a second instance buys, and what each layer costs.

Brings up the local stack (tests/harness: HAProxy rendered from haproxy/haproxy.cfg.j2 in front of
two tandem-server instances, all on loopback) and loads it with wrk, one phase at a time:

  route      GET /api/whoami (cheap), GET /api/load-test?iterations=N (CPU-bound, N calibrated
             so that one request costs about 1 ms of CPU here), POST /api/session (cookies kept)
  config     direct to one instance · HAProxy + 1 instance · HAProxy + 2 instances (with the
             deployed configuration, haproxy/defaults.yml) · for the CPU-bound route also
             HAProxy + 2 with the other balance algorithm (leastconn, roundrobin being deployed)

Each phase records requests/s, latency p50/p95/p99, errors, and the CPU seconds each process
used (HAProxy, each instance, wrk, and the rest of the machine). The results go to
bench/results/<UTC time>/ as run.json, report.md and chart.png; the last line printed names the
folder. See bench/README.md for what each figure means. Run through bench/scaling.sh.

Exit status: 0 every phase ran without errors (targets may be missed), 1 something broke or a phase
counted errors, 2 bad usage, 77 a required tool is missing, 130 interrupted.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PROG = "scaling"
EXIT_BROKEN, EXIT_USAGE, EXIT_MISSING, EXIT_INTERRUPTED = 1, 2, 77, 130

# Targets of the CPU-bound route (HAProxy + 2 instances against HAProxy + 1, same connections).
RPS_RATIO_MIN = 1.85  # Two cores make 2.0 the limit; HAProxy and wrk take part of them.
P99_RATIO_MAX = 0.60  # Half the queue per instance would give 0.5.
# Other work on the machine (in CPUs) from which a phase is flagged as noisy.
OTHERS_WARN_CPUS = 0.25
# What one CPU-bound request should cost, in ms of CPU; N is calibrated to it.
COST_TARGET_MS = 1.0
# wrk is one client address sending tens of thousands of requests a second (on the session route,
# with a session cookie set in every answer): HAProxy's per-source limits would refuse nearly all
# of it, and the benchmark would measure 429s. Their table and rules stay, as deployed, so their
# cost is measured; only their thresholds are put out of wrk's reach (--set overrides these too).
PER_SOURCE_OUT_OF_REACH = {"tandem_lb_source_maxconn": 1_000_000,
                           "tandem_lb_source_request_rate": 1_000_000_000,
                           "tandem_lb_source_session_rate": 1_000_000_000}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """Something broke: the benchmark cannot go on."""


# --- what is measured -----------------------------------------------------------------------


class Route:
    def __init__(self, key, title, script, cheap):
        self.key = key
        self.title = title
        self.script = HERE / script
        self.cheap = cheap


ROUTES = {
    "whoami": Route("whoami", "GET /api/whoami", "wrk-whoami.lua", cheap=True),
    "load-test": Route("load-test", "GET /api/load-test", "wrk-load-test.lua", cheap=False),
    "session": Route("session", "POST /api/session", "wrk-session.lua", cheap=True),
}

# Configurations, in the order they run for each route; {alt} is the alternative balance.
CONFIGS = {
    "direct": "direct to app-1",
    "haproxy-1": "HAProxy + 1 instance",
    "haproxy-2": "HAProxy + 2 instances",
    "haproxy-2-alt": "HAProxy + 2 instances, {alt}",
}
SHORT = {"direct": "direct", "haproxy-1": "HAProxy + 1", "haproxy-2": "HAProxy + 2",
         "haproxy-2-alt": "HAProxy + 2 {alt}"}
# The balance algorithms compared: the deployed one and the other.
BALANCES = ("leastconn", "roundrobin")


def configs_for(route):
    keys = ["direct", "haproxy-1", "haproxy-2"]
    # Only where requests are long does the balance algorithm matter (see bench/README.md).
    if not route.cheap:
        keys.append("haproxy-2-alt")
    return keys


def balances(settings):
    """{"deployed": the balance of the configuration measured (haproxy/defaults.yml with the
    --set values), "alternative": the other one}."""
    deployed = settings["tandem_lb_balance"]
    return {"deployed": deployed, "alternative": next(b for b in BALANCES if b != deployed)}


# --- /proc ----------------------------------------------------------------------------------


def cpu_ticks(pid):
    """utime + stime of a process (all its threads), in clock ticks; None when it is gone. A
    process that exited but is not reaped yet still answers with its final figures."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    # Fields after the ")" that ends the command name (which may hold spaces): utime is the 12th.
    fields = text.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children_of(pid):
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def thread_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


def machine_busy_ticks():
    """Busy time of all CPUs together (user, nice, system, irq, softirq, steal), in ticks."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = stat.readline().split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6, 7))


def loadavg():
    with open("/proc/loadavg", encoding="ascii") as f:
        return " ".join(f.read().split()[:3])


def busy_cpus_now(seconds=1.0):
    """How many CPUs the machine keeps busy now, sampled over `seconds`."""
    before = machine_busy_ticks()
    time.sleep(seconds)
    return (machine_busy_ticks() - before) / CLK_TCK / seconds


def machine_description():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            kib = int(f.readline().split()[1])
            memory = f"{kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return {"host": platform.node(), "cpus": os.cpu_count(), "cpu_model": model,
            "memory": memory, "kernel": platform.release()}


def command_output(argv):
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip()


# --- HTTP checks ----------------------------------------------------------------------------


def http(url, body=None, timeout=10.0):
    """(status, headers with lower-case names, parsed JSON body) of one request."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    request = urllib.request.Request(url, data=body, headers=headers,
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, raw, message = answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as error:
        status, raw, message = error.code, error.read(), error.headers
    except (OSError, urllib.error.URLError) as error:
        raise BenchError(f"{url}: {error}") from error
    # Repeated headers (Set-Cookie from the instance and from HAProxy) are joined.
    names = {k.lower(): "; ".join(message.get_all(k)) for k in set(message.keys())}
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    return status, names, doc


def check_answers(base_urls, iterations):
    """Checks that each route answers what is meant to be measured, on every path (direct and
    through each HAProxy); nothing is measured otherwise."""
    for name, base in base_urls:
        checks = [
            ("GET /api/whoami", base + "/api/whoami", None, ("container", "pid", "timestamp")),
            ("GET /api/load-test", f"{base}/api/load-test?iterations={iterations}", None,
             ("container", "result", "processingTime")),
            ("POST /api/session", base + "/api/session",
             b'{"clientId":"check","requestNum":1}', ("sessionId", "container", "requestCount")),
        ]
        for what, url, body, fields in checks:
            status, headers, doc = http(url, body)
            problems = []
            if status != 200:
                problems.append(f"status {status}")
            if not headers.get("content-type", "").startswith("application/json"):
                problems.append(f"Content-Type {headers.get('content-type')!r}")
            if not isinstance(doc, dict) or any(f not in doc for f in fields):
                problems.append(f"body lacks one of {', '.join(fields)}: {doc!r:.120}")
            if body is not None and "tandem_session=" not in headers.get("set-cookie", ""):
                problems.append("no tandem_session cookie")
            if problems:
                raise BenchError(f"{what} {name} is not what is measured: {'; '.join(problems)}")


def calibrate(instance_url, smoke):
    """The iterations of /api/load-test that cost COST_TARGET_MS on one instance, from the
    processingTime the route reports (the loop's own time, in ms), measured directly."""
    samples = 5 if smoke else 21

    def median_ms(iterations):
        times = []
        for _ in range(samples + 2):
            status, _, doc = http(f"{instance_url}/api/load-test?iterations={iterations}")
            if status != 200 or not isinstance(doc, dict) or "processingTime" not in doc:
                raise BenchError(f"/api/load-test?iterations={iterations} answered {status}")
            times.append(float(doc["processingTime"]))
        return statistics.median(times[2:])  # The first two warm the caches.

    iterations = 200_000
    for _ in range(4):
        measured = median_ms(iterations)
        if measured <= 0:
            raise BenchError("/api/load-test reports a processingTime of 0 ms")
        wanted = max(1, min(100_000_000, round(iterations * COST_TARGET_MS / measured, -3)))
        if abs(measured - COST_TARGET_MS) <= 0.03 * COST_TARGET_MS:
            break
        iterations = int(wanted)
    measured = median_ms(iterations)
    return {"iterations": iterations, "processing_ms_median": round(measured, 4),
            "samples": samples, "target_ms": COST_TARGET_MS}


# --- one phase ------------------------------------------------------------------------------


class Tracked:
    """The processes whose CPU time a phase records, by name."""

    def __init__(self, stacks):
        self.stacks = stacks  # {name: Stack}

    def pids(self):
        groups = {}
        for name, stack in self.stacks.items():
            master = stack.haproxy.pid
            groups[name] = [master] + children_of(master)
        main = self.stacks["haproxy"]
        for instance in main.instances.values():
            if instance.process is None or instance.process.exited():
                raise BenchError(f"{instance.id} is not running (log {instance.log_path})")
            groups[instance.id] = [instance.process.pid]
        return groups


def ticks_of(groups):
    return {name: sum(cpu_ticks(pid) or 0 for pid in pids) for name, pids in groups.items()}


def served_counts(stack, path):
    """Answers with status 200 on `path` per instance so far, from each instance's /api/metrics."""
    counts = {}
    for instance in stack.instances.values():
        _, _, doc = http(instance.url("/api/metrics"))
        try:
            counts[instance.id] = int(doc["requests"]["byRoute"].get(path, {}).get("200", 0))
        except (TypeError, KeyError, ValueError):
            counts[instance.id] = 0
    return counts


def run_wrk(args, route, url, seconds, extra, workdir, name):
    """One wrk run; returns (its output, its CPU seconds). wrk is stopped on any exit."""
    from tests.harness.processes import Process

    log = workdir / f"wrk-{name}.txt"
    argv = ["wrk", "-t1", f"-c{args.connections}", f"-d{seconds}s", "--latency",
            "-s", str(route.script), url]
    if extra:
        argv += ["--"] + extra
    process = Process("wrk", argv, log)
    try:
        if not process.wait(seconds + 30):
            raise BenchError(f"wrk did not finish within {seconds + 30} s: {' '.join(argv)}")
        # Exited but not yet reaped: /proc still has its final CPU time.
        ticks = cpu_ticks(process.pid)
    finally:
        code = process.stop(grace=2.0)
    output = log.read_text(encoding="utf-8", errors="replace")
    if code != 0:
        raise BenchError(f"wrk exited with {code}: {' '.join(argv)}\n{output[-2000:]}")
    return output, (ticks or 0) / CLK_TCK


def parse_wrk(output):
    run, session = None, None
    for line in output.splitlines():
        if line.startswith("WRK-JSON "):
            run = json.loads(line[len("WRK-JSON "):])
        elif line.startswith("WRK-SESSION "):
            session = json.loads(line[len("WRK-SESSION "):])
    if run is None:
        raise BenchError("wrk printed no WRK-JSON line:\n" + output[-2000:])
    return run, session


def measure(args, route, config, url, extra, tracked, stack, workdir, number, total):
    label = CONFIGS[config].format(alt=args.balance["alternative"])
    print(f"[{number:>2}/{total}] {route.title:<18} {label:<34} "
          f"{args.warmup} s warm-up + {args.duration} s ...", flush=True)
    if args.warmup:
        run_wrk(args, route, url, args.warmup, extra, workdir, f"{route.key}-{config}-warmup")
    groups = tracked.pids()
    path = "/api/" + route.key
    served_before = served_counts(stack, path)
    before = ticks_of(groups)
    busy_before = machine_busy_ticks()
    output, wrk_cpu = run_wrk(args, route, url, args.duration, extra, workdir,
                              f"{route.key}-{config}")
    busy_after = machine_busy_ticks()
    after = ticks_of(groups)
    served_after = served_counts(stack, path)
    tracked.pids()  # Raises if an instance died during the run.
    run, session = parse_wrk(output)

    seconds = run["duration_us"] / 1e6
    requests = run["requests"]
    cpu = {name: (after[name] - before[name]) / CLK_TCK for name in groups}
    cpu["wrk"] = wrk_cpu
    machine = (busy_after - busy_before) / CLK_TCK
    cpu["others"] = max(0.0, machine - sum(cpu.values()))
    instances = [name for name in groups if name.startswith("app-")]
    # Direct, no request goes through HAProxy: its few health checks are no cost per request.
    balancers = [] if config == "direct" else [n for n in groups if n.startswith("haproxy")]

    def per_request(names):
        return sum(cpu[n] for n in names) * 1e6 / requests if requests and names else None

    errors = dict(run["errors"])
    if session is not None:
        errors["sticky_miss"] = session["sticky_misses"]
        errors["no_session"] = session["without_session"]
        errors["not_200"] = session["not_200"]
    problems = [f"{count} {kind}" for kind, count in errors.items() if count]
    if requests == 0:
        problems.append("no request completed")
    lat = run["latency_us"]
    phase = {
        "route": route.key, "route_title": route.title, "config": config, "label": label,
        "url": url, "wrk_args": extra, "connections": args.connections,
        "seconds": round(seconds, 3), "requests": requests, "rps": round(run["rps"], 1),
        "latency_ms": {k: lat[k] / 1000 for k in ("p50", "p75", "p90", "p95", "p99", "p99_9",
                                                   "max", "mean") if k in lat},
        "errors": errors, "error_count": sum(errors.values()),
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "machine_busy_s": round(machine, 3),
        "others_cpus": round(cpu["others"] / seconds, 3) if seconds else None,
        "cpu_us_per_request": {
            "haproxy": per_request(balancers), "instances": per_request(instances),
            "wrk": per_request(["wrk"]),
            "total": per_request(balancers + instances + ["wrk"]),
        },
        "served": {k: served_after[k] - served_before.get(k, 0) for k in served_after},
        "bytes_per_response": round(run["bytes"] / requests, 1) if requests else None,
        "session": session, "problems": problems,
    }
    print("        " + describe(phase), flush=True)
    if phase["others_cpus"] is not None and phase["others_cpus"] >= OTHERS_WARN_CPUS:
        print(f"        warning: other work kept {phase['others_cpus']:.2f} CPU busy during this"
              " phase; its figures are noisy, re-run on a quieter machine", flush=True)
    return phase


def describe(phase):
    lat = phase["latency_ms"]
    cpu = phase["cpu_s"]
    parts = [f"{phase['rps']:>9,.0f} req/s", f"p50 {lat['p50']:6.2f}", f"p95 {lat['p95']:6.2f}",
             f"p99 {lat['p99']:6.2f} ms", f"errors {phase['error_count']}",
             "cpu s: " + " ".join(f"{name} {cpu[name]:.2f}" for name in
                                  sorted(cpu, key=cpu_order)),
             f"others {phase['others_cpus']:.2f} CPU"]
    per = phase["cpu_us_per_request"]
    if per["haproxy"] is not None:
        parts.append(f"haproxy {per['haproxy']:.1f} us/req")
    text = "  ".join(parts)
    if phase["problems"]:
        text += "  INVALID: " + ", ".join(phase["problems"])
    return text


def cpu_order(name):
    order = ["haproxy", "haproxy-alt", "app-1", "app-2", "wrk", "others"]
    return order.index(name) if name in order else len(order)


# --- the run --------------------------------------------------------------------------------


def run_phases(args, server_bin):
    from tests.harness.stack import Stack

    # The deployed configuration (haproxy/defaults.yml), but for what --set changes and the
    # per-source thresholds.
    overrides = {**PER_SOURCE_OUT_OF_REACH, **dict(args.set)}
    routes = [ROUTES[key] for key in args.routes]
    need_alternative = any(not r.cheap for r in routes)
    total = sum(len(configs_for(r)) for r in routes)
    deployed, alternative = args.balance["deployed"], args.balance["alternative"]

    print(f"== bringing up the stack: HAProxy ({deployed}, as deployed) + app-1 + app-2"
          + (f", and a second HAProxy with {alternative} in front of the same two"
             if need_alternative else ""), flush=True)
    with Stack(instances=2, server_bin=server_bin, overrides=overrides) as main:
        stacks = {"haproxy": main}
        second = None
        try:
            if need_alternative:
                servers = [{"id": i.id, "host": "127.0.0.1", "port": i.port}
                           | ({"agent_port": i.agent_port} if i.agent_port else {})
                           for i in main.instances.values()]
                second = Stack(instances=0, extra_servers=servers,
                               overrides={**overrides, "tandem_lb_balance": alternative})
                second.up()
                stacks["haproxy-alt"] = second
            return measure_all(args, routes, total, main, stacks)
        finally:
            if second is not None:
                second.down(grace=2.0)
            stop_instances_fast(main)


def stop_instances_fast(stack):
    """Two SIGTERMs: tandem-server's second one skips the drain grace, which a benchmark that
    sends nothing more does not need; the stack's own teardown then only reaps."""
    for instance in stack.instances.values():
        if instance.process is not None and instance.process.alive():
            instance.process.send(signal.SIGTERM)
    time.sleep(0.2)
    for instance in stack.instances.values():
        if instance.process is not None and instance.process.alive():
            instance.process.send(signal.SIGTERM)


def measure_all(args, routes, total, main, stacks):
    app1 = main.instances["app-1"]
    tracked = Tracked(stacks)
    info = {"haproxy_threads": {name: [thread_count(pid) for pid in children_of(s.haproxy.pid)]
                                for name, s in stacks.items()}}
    for name, stack in stacks.items():
        print(f"   {name:<18} {stack.url()}  worker threads "
              f"{info['haproxy_threads'][name]}  (work directory {stack.workdir})")
    for instance in main.instances.values():
        print(f"   {instance.id:<18} {instance.url()}  pid {instance.process.pid}")

    if args.iterations:
        calibration = {"iterations": args.iterations, "given": True}
    else:
        print(f"== calibrating /api/load-test on app-1 to about {COST_TARGET_MS:g} ms per request",
              flush=True)
        calibration = calibrate(app1.url(""), args.smoke)
    iterations = calibration["iterations"]
    if not args.iterations:
        print(f"   iterations={iterations}: processingTime median "
              f"{calibration['processing_ms_median']:.3f} ms", flush=True)
    info["calibration"] = calibration

    bases = [("direct", app1.url("").rstrip("/"))] + [
        (f"through {name}", stack.url("").rstrip("/")) for name, stack in stacks.items()]
    check_answers(bases, iterations)
    print("== answers checked (200, JSON, the fields measured) direct and through HAProxy",
          flush=True)
    print(f"== {len(routes)} route(s), {total} phases: wrk -t1 -c{args.connections} "
          f"-d{args.duration}s, each after a {args.warmup} s warm-up", flush=True)

    phases = []
    number = 0
    api, backend = main.api, main.backend
    for route in routes:
        extra = [str(iterations)] if route.key == "load-test" else []
        for config in configs_for(route):
            number += 1
            if config == "direct":
                url = app1.url("").rstrip("/")
            elif config == "haproxy-2-alt":
                url = stacks["haproxy-alt"].url("").rstrip("/")
            else:
                url = main.url("").rstrip("/")
            # HAProxy + 1: app-2 in maint, so that the one HAProxy sends everything to app-1.
            api.set_server_state(backend, "app-2", "maint" if config == "haproxy-1" else "ready")
            if config != "haproxy-1":
                main.wait_status("app-2", lambda s: s == "UP", timeout=10)
            phases.append(measure(args, route, config, url, extra, tracked, main,
                                  main.workdir, number, total))
    api.set_server_state(backend, "app-2", "ready")
    info["loadavg_end"] = loadavg()
    return phases, info


# --- figures and reports ----------------------------------------------------------------------


def find(phases, route, config):
    for phase in phases:
        if phase["route"] == route and phase["config"] == config:
            return phase
    return None


def verdict(ok, valid):
    if not valid:
        return "not judged (errors counted)"
    return "PASS" if ok else "MISS"


def figures(phases, balance_of):
    """The ratios and per-request costs the report judges; balance_of is meta["balance"]."""
    out = {"cpu_bound": {}, "cheap": {}, "session": {}}
    one = find(phases, "load-test", "haproxy-1")
    for config, balance in (("haproxy-2", balance_of["deployed"]),
                            ("haproxy-2-alt", balance_of["alternative"])):
        two = find(phases, "load-test", config)
        if not one or not two:
            continue
        valid = not one["problems"] and not two["problems"]
        # Judged as printed, to three decimals, so that "1.850" never reads as a MISS.
        rps_ratio = round(two["rps"] / one["rps"], 3) if one["rps"] else 0.0
        p99_ratio = (round(two["latency_ms"]["p99"] / one["latency_ms"]["p99"], 3)
                     if one["latency_ms"]["p99"] else float("inf"))
        out["cpu_bound"][balance] = {
            "rps_ratio": round(rps_ratio, 3), "p99_ratio": round(p99_ratio, 3),
            "rps_target_min": RPS_RATIO_MIN, "p99_target_max": P99_RATIO_MAX,
            "rps_verdict": verdict(rps_ratio >= RPS_RATIO_MIN, valid),
            "p99_verdict": verdict(p99_ratio <= P99_RATIO_MAX, valid),
            "split": two["served"],
            "cpu_s": two["cpu_s"],
        }
        # What the machine's CPUs allow: all of them busy at the CPU per request (instances,
        # HAProxy, wrk) measured with two instances. When the measured ratio is close to this
        # ceiling, what is missing went to HAProxy and wrk on the same cores, not to idling.
        total_us = two["cpu_us_per_request"]["total"]
        if total_us and one["rps"]:
            cpus = os.cpu_count() or 1
            ceiling = cpus * 1e6 / total_us
            out["cpu_bound"][balance].update({
                "total_cpu_us_per_request": round(total_us, 1),
                "ceiling_rps": round(ceiling, 1),
                "ceiling_ratio": round(ceiling / one["rps"], 3),
                "machine_used": round(two["rps"] / ceiling, 3),
            })
    for key, route in (("cheap", "whoami"), ("session", "session")):
        direct, via = find(phases, route, "direct"), find(phases, route, "haproxy-1")
        if not direct or not via:
            continue
        two = find(phases, route, "haproxy-2")
        entry = {
            "haproxy_us_per_request": via["cpu_us_per_request"]["haproxy"],
            "rps_direct_over_haproxy": round(direct["rps"] / via["rps"], 3) if via["rps"] else None,
            "p50_added_ms": round(via["latency_ms"]["p50"] - direct["latency_ms"]["p50"], 3),
            "total_cpu_us_per_request_direct": direct["cpu_us_per_request"]["total"],
            "total_cpu_us_per_request_haproxy": via["cpu_us_per_request"]["total"],
        }
        if entry["total_cpu_us_per_request_direct"] and entry["total_cpu_us_per_request_haproxy"]:
            entry["hop_total_cpu_us_per_request"] = (entry["total_cpu_us_per_request_haproxy"]
                                                     - entry["total_cpu_us_per_request_direct"])
        if two:
            entry["haproxy_us_per_request_2"] = two["cpu_us_per_request"]["haproxy"]
            entry["rps_2_over_1"] = round(two["rps"] / via["rps"], 3) if via["rps"] else None
        out[key] = entry
    load_one = find(phases, "load-test", "haproxy-1")
    if load_one:
        out["cpu_bound"]["haproxy_us_per_request"] = load_one["cpu_us_per_request"]["haproxy"]
    load_direct = find(phases, "load-test", "direct")
    if load_direct:
        out["cpu_bound"]["instance_us_per_request_direct"] = (
            load_direct["cpu_us_per_request"]["instances"])
    return out


def nbthread_text(nbthread):
    return f"nbthread {nbthread}" if nbthread else "nbthread: HAProxy's default (one per CPU)"


def fmt(value, spec=".1f", none="–"):
    return none if value is None else format(value, spec)


def print_summary(figs, phases, balance_of):
    print("== result")
    for role in ("deployed", "alternative"):
        balance = balance_of[role]
        entry = figs["cpu_bound"].get(balance)
        if not entry:
            continue
        note = "the deployed balance" if role == "deployed" else "the alternative"
        print(f"   CPU-bound, HAProxy + 2 ({balance}, {note}) vs HAProxy + 1: "
              f"req/s x{entry['rps_ratio']:.3f} (target >= {RPS_RATIO_MIN:.2f}) "
              f"{entry['rps_verdict']};  p99 x{entry['p99_ratio']:.3f} "
              f"(target <= {P99_RATIO_MAX:.2f}) {entry['p99_verdict']}")
        if "ceiling_ratio" in entry:
            cpu = entry["cpu_s"]
            print(f"      CPU s: app-1 {cpu['app-1']:.2f}, app-2 {cpu['app-2']:.2f}, HAProxy "
                  f"{cpu.get('haproxy', 0) + cpu.get('haproxy-alt', 0):.2f}, wrk "
                  f"{cpu['wrk']:.2f}, others {cpu['others']:.2f}; "
                  f"{entry['total_cpu_us_per_request']:.0f} us of CPU per request in all, so "
                  f"{os.cpu_count()} CPUs allow x{entry['ceiling_ratio']:.3f} at most; "
                  f"{entry['machine_used'] * 100:.1f} % of that reached; split {entry['split']}")
    cheap = figs.get("cheap")
    if cheap:
        print(f"   cheap route: the HAProxy hop costs {fmt(cheap['haproxy_us_per_request'])} us of "
              f"HAProxy CPU per request ({fmt(cheap.get('hop_total_cpu_us_per_request'))} us of "
              "CPU in all, wrk and instances included); req/s direct / through HAProxy = "
              f"{fmt(cheap['rps_direct_over_haproxy'], '.2f')}; p50 +"
              f"{cheap['p50_added_ms']:.3f} ms")
    noisy = [p for p in phases if (p["others_cpus"] or 0) >= OTHERS_WARN_CPUS]
    if noisy:
        print(f"   warning: other work kept >= {OTHERS_WARN_CPUS} CPU busy in {len(noisy)} "
              f"phase(s) ({', '.join(p['route'] + '/' + p['config'] for p in noisy)}): "
              "noisy figures, re-run on a quieter machine")
    invalid = [p for p in phases if p["problems"]]
    if invalid:
        print("   INVALID phases (errors counted): " + "; ".join(
            f"{p['route']}/{p['config']}: {', '.join(p['problems'])}" for p in invalid))


def markdown(report):
    meta, figs, phases = report["meta"], report["figures"], report["phases"]
    m = meta["machine"]
    lines = [
        f"# tandem scaling benchmark, {meta['date']}",
        "",
        f"- machine: {m['host']}, {m['cpus']} CPUs ({m['cpu_model']}), {m['memory']}, "
        f"Linux {m['kernel']}",
        f"- load average at the start {meta['loadavg_start']}, at the end "
        f"{meta.get('loadavg_end', '?')}; busy CPUs just before: {meta['busy_cpus_before']:.2f}",
        f"- tandem-server {meta['server_version']} ({meta['server']}), commit {meta['commit']}",
        f"- {meta['haproxy_version']}, {nbthread_text(meta['haproxy_nbthread'])} "
        f"(worker threads seen: {meta['haproxy_threads']}); {meta['wrk_version']}",
        f"- balance: {meta['balance']['deployed']} (deployed); {meta['balance']['alternative']} "
        "(the alternative) on the CPU-bound route through a second HAProxy",
        "- HAProxy configuration: haproxy/defaults.yml" + (
            ", with " + ", ".join(f"{k}={v}" for k, v in meta["haproxy_set"].items())
            if meta["haproxy_set"] else ", as deployed"),
        f"- wrk -t1 -c{meta['connections']}, {meta['duration']} s per phase after a "
        f"{meta['warmup']} s warm-up{'; SMOKE RUN, figures meaningless' if meta['smoke'] else ''}",
    ]
    cal = meta.get("calibration") or {}
    if cal:
        how = ("given with --iterations" if cal.get("given") else
               f"calibrated: processingTime median {cal['processing_ms_median']:.3f} ms on app-1")
        lines.append(f"- CPU-bound route: /api/load-test?iterations={cal['iterations']} ({how})")
    lines += [
        "",
        "## Phases",
        "",
        "CPU s: CPU seconds used during the phase (utime + stime from /proc); others: the rest "
        "of the machine, in CPUs; µs/req: CPU time per request.",
        "",
        "| route | configuration | req/s | p50 ms | p95 ms | p99 ms | errors | CPU s haproxy "
        "| CPU s app-1 | CPU s app-2 | CPU s wrk | others CPUs | haproxy µs/req "
        "| instances µs/req | total µs/req | split app-1/app-2 |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for p in phases:
        cpu, lat, per = p["cpu_s"], p["latency_ms"], p["cpu_us_per_request"]
        haproxy = cpu.get("haproxy", 0) + cpu.get("haproxy-alt", 0)
        split = "/".join(str(p["served"].get(k, 0)) for k in ("app-1", "app-2"))
        errors = str(p["error_count"]) + (" INVALID" if p["problems"] else "")
        lines.append(
            f"| {p['route_title']} | {p['label']} | {p['rps']:,.0f} | {lat['p50']:.2f} | "
            f"{lat['p95']:.2f} | {lat['p99']:.2f} | {errors} | {haproxy:.2f} | "
            f"{cpu.get('app-1', 0):.2f} | {cpu.get('app-2', 0):.2f} | {cpu['wrk']:.2f} | "
            f"{p['others_cpus']:.2f} | {fmt(per['haproxy'])} | {fmt(per['instances'])} | "
            f"{fmt(per['total'])} | {split} |")
    lines += ["", "## Figures", "", "| figure | value | target | verdict |", "|---|--:|--:|---|"]
    for tag in ("deployed", "alternative"):
        balance = meta["balance"][tag]
        entry = figs["cpu_bound"].get(balance)
        if not entry:
            continue
        lines.append(f"| CPU-bound: req/s HAProxy + 2 ({balance}, {tag}) ÷ HAProxy + 1 | "
                     f"{entry['rps_ratio']:.3f} | ≥ {RPS_RATIO_MIN:.2f} | "
                     f"{entry['rps_verdict']} |")
        lines.append(f"| CPU-bound: p99 HAProxy + 2 ({balance}, {tag}) ÷ HAProxy + 1 | "
                     f"{entry['p99_ratio']:.3f} | ≤ {P99_RATIO_MAX:.2f} | "
                     f"{entry['p99_verdict']} |")
        if "ceiling_ratio" in entry:
            lines.append(f"| CPU-bound ({balance}): the most {meta['machine']['cpus']} CPUs allow "
                         f"at {entry['total_cpu_us_per_request']:.0f} µs of CPU per request "
                         "(instances + HAProxy + wrk), ÷ HAProxy + 1 | "
                         f"{entry['ceiling_ratio']:.3f} | | "
                         f"{entry['machine_used'] * 100:.1f} % of it reached |")
    cpu_bound = figs["cpu_bound"]
    if "instance_us_per_request_direct" in cpu_bound:
        lines.append("| CPU-bound: instance CPU per request, direct | "
                     f"{fmt(cpu_bound['instance_us_per_request_direct'], '.0f')} µs | ≈ "
                     f"{COST_TARGET_MS * 1000:.0f} µs | |")
    if "haproxy_us_per_request" in cpu_bound:
        lines.append("| CPU-bound: HAProxy CPU per request | "
                     f"{fmt(cpu_bound['haproxy_us_per_request'])} µs | | |")
    for key, title in (("cheap", "cheap (whoami)"), ("session", "session")):
        entry = figs.get(key)
        if not entry:
            continue
        lines.append(f"| {title}: HAProxy CPU per request (the hop) | "
                     f"{fmt(entry['haproxy_us_per_request'])} µs | | |")
        lines.append(f"| {title}: CPU per request, all processes, through HAProxy − direct | "
                     f"{fmt(entry.get('hop_total_cpu_us_per_request'))} µs | | |")
        lines.append(f"| {title}: req/s direct ÷ through HAProxy + 1 | "
                     f"{fmt(entry['rps_direct_over_haproxy'], '.2f')} | | |")
        lines.append(f"| {title}: p50 added by the hop | {entry['p50_added_ms']:.3f} ms | | |")
        if entry.get("rps_2_over_1") is not None:
            lines.append(f"| {title}: req/s HAProxy + 2 ÷ HAProxy + 1 | "
                         f"{entry['rps_2_over_1']:.2f} | | |")
    noisy = [p for p in phases if (p["others_cpus"] or 0) >= OTHERS_WARN_CPUS]
    lines += [""]
    if noisy:
        lines.append(f"**Noisy:** other work kept ≥ {OTHERS_WARN_CPUS} CPU busy during "
                     + ", ".join(f"{p['route']} / {p['label']}" for p in noisy)
                     + "; re-run on a quieter machine.")
    else:
        lines.append(f"Quiet: other work stayed below {OTHERS_WARN_CPUS} CPU in every phase.")
    invalid = [p for p in phases if p["problems"]]
    if invalid:
        lines.append("")
        lines.append("**INVALID** (errors counted): " + "; ".join(
            f"{p['route']} / {p['label']}: {', '.join(p['problems'])}" for p in invalid))
    lines += ["", "![throughput and p99 per configuration](chart.png)", ""]
    return "\n".join(lines)


COLOURS = {"direct": "0x777777", "haproxy-1": "0x4477aa", "haproxy-2": "0x66ccee",
           "haproxy-2-alt": "0x228833"}


def chart(report, folder, workdir):
    """chart.png: for each route, requests/s and p99 latency per configuration (gnuplot)."""
    phases = report["phases"]
    routes = [key for key in ROUTES if any(p["route"] == key for p in phases)]
    data = workdir / "chart.dat"
    with open(data, "w", encoding="utf-8") as out:
        for key in routes:
            for p in phases:
                if p["route"] == key:
                    short = SHORT[p["config"]].format(alt=report["meta"]["balance"]["alternative"])
                    out.write(f"\"{short}\" {p['rps']:.1f} "
                              f"{p['latency_ms']['p99']:.3f} {COLOURS[p['config']]}\n")
            out.write("\n\n")  # gnuplot: the next data block (index).
    meta = report["meta"]
    title = (f"tandem scaling: {meta['machine']['host']}, {meta['machine']['cpus']} CPUs, "
             f"{meta['date']}, wrk -t1 -c{meta['connections']} {meta['duration']} s per phase"
             + (" (SMOKE RUN)" if meta["smoke"] else ""))
    script = [
        "set terminal pngcairo size 1400,%d font 'DejaVu Sans,10'" % (330 * len(routes) + 60),
        f"set output '{folder / 'chart.png'}'",
        f"set multiplot layout {len(routes)},2 title '{title}' font ',13'",
        "set style fill solid 0.85 border rgb '#333333'",
        "set boxwidth 0.6",
        "unset key",
        "set grid ytics lc rgb '#dddddd'",
        "set xtics nomirror noenhanced scale 0",
        "set ytics nomirror",
        "set border 3",
        "set yrange [0:*]",
        "set offsets 0, 0, graph 0.15, 0",  # Room above the bars for their values.
    ]
    figs = report["figures"]["cpu_bound"]
    for index, key in enumerate(routes):
        route = ROUTES[key]
        bars = sum(1 for p in phases if p["route"] == key)
        script.append(f"set xrange [-0.6:{bars - 0.4}]")
        for column, what, fmt_label, ratio, target in (
                (2, "requests/s (higher is better)", "%.0f", "rps_ratio",
                 f">= x{RPS_RATIO_MIN:.2f}"),
                (3, "p99 latency, ms (lower is better)", "%.2f", "p99_ratio",
                 f"<= x{P99_RATIO_MAX:.2f}")):
            script.append(f"set title \"{route.title}: {what}\" noenhanced")
            # On the CPU-bound route, the judged ratio (HAProxy + 2 against HAProxy + 1).
            order = (meta["balance"]["deployed"], meta["balance"]["alternative"])
            parts = [f"{b} x{figs[b][ratio]:.3f}" for b in order
                     if key == "load-test" and b in figs]
            if parts:
                label = f"HAProxy + 2 / + 1: {', '.join(parts)} (target {target})"
                script.append(f"set label 1 \"{label}\" at graph 0.02, graph 0.96 left "
                              "font ',9' noenhanced")
            else:
                script.append("unset label 1")
            script.append(
                f"plot '{data}' index {index} using 0:{column}:4:xtic(1) with boxes lc rgb "
                f"variable, '' index {index} using 0:{column}:(sprintf('{fmt_label}', "
                f"${column})) with labels offset 0,0.8 font ',9'")
    script.append("unset multiplot")
    gp = workdir / "chart.gp"
    gp.write_text("\n".join(script) + "\n", encoding="utf-8")
    result = subprocess.run(["gnuplot", str(gp)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=60, check=False)
    if result.returncode != 0 or not (folder / "chart.png").exists():
        raise BenchError(f"gnuplot failed:\n{result.stdout[-2000:]}")


def results_folder(args):
    base = pathlib.Path(args.results_dir).resolve()
    base.mkdir(parents=True, exist_ok=True)
    if args.smoke:
        # One smoke folder, replaced by each smoke run, so the test suite leaves no pile behind.
        return base / "smoke", base / f".smoke-{os.getpid()}"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%SZ")
    folder = base / stamp
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    return folder, folder


def write_results(args, report, workdir):
    folder, staging = results_folder(args)
    staging.mkdir(parents=True, exist_ok=False)
    try:
        (staging / "run.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (staging / "report.md").write_text(markdown(report), encoding="utf-8")
        chart(report, staging, workdir)
        if staging != folder:
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
    except BaseException:
        if staging != folder:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


# --- set-up ---------------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/scaling.sh",
        description="Measures tandem-server direct, through HAProxy with one instance and with "
                    "two (wrk, on loopback): requests/s, p50/p95/p99, errors and the CPU seconds "
                    "of every process, on a cheap route, a CPU-bound route calibrated to about "
                    "1 ms per request, and the session route. Writes run.json, report.md and "
                    "chart.png to a results folder named on the last line.",
        epilog="Exit status: 0 every phase ran without errors (targets may be missed), 1 something "
               "broke or errors were counted, 2 bad usage, 77 a required tool is missing, "
               "130 interrupted. bench/README.md explains every figure.")
    parser.add_argument("--server", metavar="PATH",
                        help="tandem-server binary; skips the build (default: build Release "
                             "into build-release/)")
    parser.add_argument("--duration", type=positive, metavar="SECONDS",
                        help="length of each measured phase (default 10; --smoke: 1)")
    parser.add_argument("--warmup", type=non_negative, metavar="SECONDS",
                        help="unmeasured wrk run before each phase (default 1; --smoke: 0)")
    parser.add_argument("--connections", type=positive, default=16, metavar="N",
                        help="wrk connections, the same in every phase (default 16)")
    parser.add_argument("--routes", default="whoami,load-test,session",
                        help="comma-separated routes to measure, of whoami, load-test, session "
                             "(default: all three)")
    parser.add_argument("--iterations", type=positive, metavar="N",
                        help="iterations of /api/load-test, instead of calibrating them")
    parser.add_argument("--set", action="append", default=[], type=setting,
                        metavar="VARIABLE=VALUE",
                        help="measure HAProxy with this template variable changed (repeatable), "
                             "e.g. --set tandem_lb_nbthread=1 or --set tandem_lb_balance=leastconn; "
                             "default: the deployed values of haproxy/defaults.yml")
    parser.add_argument("--results-dir", default=str(HERE / "results"), metavar="DIR",
                        help="where the results folder is made (default bench/results)")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick check that the benchmark works: 1 s phases, no warm-up, "
                             "results in <results-dir>/smoke (replaced each time); exit 0 when "
                             "everything ran, whatever the figures")
    parser.add_argument("--no-install-deps", action="store_true",
                        help="do not call packaging/install-deps.sh bench first")
    args = parser.parse_args(argv)
    if args.duration is None:
        args.duration = 1 if args.smoke else 10
    if args.warmup is None:
        args.warmup = 0 if args.smoke else 1
    routes = [r.strip() for r in args.routes.split(",") if r.strip()]
    unknown = [r for r in routes if r not in ROUTES]
    if unknown or not routes:
        parser.error(f"--routes takes whoami, load-test and session, not {args.routes!r}")
    args.routes = [key for key in ROUTES if key in routes]
    if args.server and not os.access(args.server, os.X_OK):
        parser.error(f"--server {args.server}: no such executable")
    return args


def setting(text):
    """NAME=VALUE of --set: a variable of haproxy/defaults.yml, the value read as YAML."""
    import yaml

    from tests.harness import config
    from tests.harness.stack import OWN_VARIABLES

    name, sep, value = text.partition("=")
    defaults = config.load_defaults()
    if not sep or name not in defaults:
        raise argparse.ArgumentTypeError(
            f"{text!r}: want VARIABLE=VALUE with a variable of haproxy/defaults.yml "
            f"({', '.join(sorted(defaults))})")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not YAML: {error}") from None
    if name in OWN_VARIABLES:
        raise argparse.ArgumentTypeError(f"{text!r}: the local stack sets {name} itself "
                                         "(tests/harness/stack.py)")
    if name == "tandem_lb_nbthread" and (type(parsed) is not int or parsed < 0):
        raise argparse.ArgumentTypeError(f"{text!r}: wants a whole number of threads, 0 for "
                                         "HAProxy's default")
    if name == "tandem_lb_balance" and parsed not in BALANCES:
        raise argparse.ArgumentTypeError(f"{text!r}: the benchmark compares {' and '.join(BALANCES)}")
    return name, parsed


def positive(text):
    value = int(text.rstrip("s")) if re.fullmatch(r"\d{1,7}s?", text) else 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"wants a positive whole number, not {text!r}")
    return value


def non_negative(text):
    if not re.fullmatch(r"\d{1,7}s?", text):
        raise argparse.ArgumentTypeError(f"wants a whole number, not {text!r}")
    return int(text.rstrip("s"))


def prerequisites(args):
    if not args.no_install_deps:
        if subprocess.run([str(REPO / "packaging" / "install-deps.sh"), "bench"],
                          stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False).returncode:
            print(f"{PROG}: packaging/install-deps.sh bench failed; checking for the tools anyway",
                  file=sys.stderr)
    tools = ["wrk", "haproxy", "gnuplot"] + ([] if args.server else ["cmake"])
    missing = [tool for tool in tools if shutil.which(tool) is None]
    for module, package in (("jinja2", "python3-jinja2"), ("yaml", "python3-yaml")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{package} (for {sys.executable})")
    if missing:
        print(f"{PROG}: missing: {', '.join(missing)} (packaging/install-deps.sh bench installs "
              "them)", file=sys.stderr)
        sys.exit(EXIT_MISSING)


def build_release(workdir):
    build = REPO / "build-release"
    print(f"== building tandem-server (Release) in {build} ...", flush=True)
    log = workdir / "build.log"
    with open(log, "w", encoding="utf-8") as out:
        for argv in (["cmake", "-S", str(REPO), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                      "-DTANDEM_BUILD_TESTS=OFF"],
                     ["cmake", "--build", str(build), "-j2"]):
            if subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode:
                print(log.read_text(encoding="utf-8", errors="replace")[-4000:], file=sys.stderr)
                raise BenchError("the Release build failed (output above)")
    return str(build / "server" / "tandem-server")


def git_commit():
    commit = command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{4,40}", commit):
        return "unknown"
    dirty = command_output(["git", "-C", str(REPO), "status", "--porcelain",
                            "--untracked-files=no"])
    return commit + ("-dirty" if dirty else "")


def main(argv=None):
    args = parse_args(argv)
    prerequisites(args)
    from tests.harness.processes import raise_on_termination
    from tests.harness.stack import StackError

    from tests.harness import config

    raise_on_termination()
    settings = {**config.load_defaults(), **dict(args.set)}
    args.balance = balances(settings)
    nbthread = int(settings["tandem_lb_nbthread"] or 0)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-scaling-"))
    try:
        server_bin = os.path.abspath(args.server) if args.server else build_release(workdir)
        busy = busy_cpus_now()
        machine = machine_description()
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine, "loadavg_start": loadavg(), "busy_cpus_before": round(busy, 3),
            "server": server_bin,
            "server_version": command_output([server_bin, "--version"]).split("\n")[0]
                              .removeprefix("tandem-server "),
            "commit": git_commit(),
            "haproxy_version": command_output(["haproxy", "-v"]).split("\n")[0].split(" - ")[0],
            "haproxy_nbthread": nbthread,
            "haproxy_set": dict(args.set),
            "balance": args.balance,
            "wrk_version": " ".join(command_output(["wrk", "-v"]).split()[:2]),
            "connections": args.connections, "duration": args.duration, "warmup": args.warmup,
            "routes": args.routes, "smoke": args.smoke,
        }
        print(f"== tandem scaling benchmark{' (smoke)' if args.smoke else ''}: {meta['date']} on "
              f"{machine['host']}, {machine['cpus']} CPUs ({machine['cpu_model']}), load average "
              f"{meta['loadavg_start']}, {busy:.2f} CPUs busy just now", flush=True)
        if busy >= OTHERS_WARN_CPUS:
            print(f"   warning: the machine is busy ({busy:.2f} CPUs before the start); the "
                  "figures will be noisy", flush=True)
        print(f"   tandem-server {meta['server_version']} ({server_bin}), commit {meta['commit']}; "
              f"{meta['haproxy_version']}, {nbthread_text(nbthread)}; "
              f"{meta['wrk_version']}", flush=True)
        print("   HAProxy as deployed but for: "
              + ", ".join(f"{k}={v}" for k, v in {**PER_SOURCE_OUT_OF_REACH,
                                                   **dict(args.set)}.items()), flush=True)

        phases, info = run_phases(args, server_bin)
        meta["haproxy_threads"] = info["haproxy_threads"]
        meta["calibration"] = info["calibration"]
        meta["loadavg_end"] = info["loadavg_end"]
        report = {"meta": meta, "phases": phases, "figures": figures(phases, args.balance),
                  "targets": {"rps_ratio_min": RPS_RATIO_MIN, "p99_ratio_max": P99_RATIO_MAX,
                              "others_warn_cpus": OTHERS_WARN_CPUS,
                              "cost_target_ms": COST_TARGET_MS}}
        print_summary(report["figures"], phases, args.balance)
        folder = write_results(args, report, workdir)
        invalid = any(p["problems"] for p in phases)
        if invalid:
            print("INVALID: errors were counted (see above)", file=sys.stderr)
        print(f"results: {folder}", flush=True)
        return EXIT_BROKEN if invalid else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BenchError, StackError, ValueError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_BROKEN
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
