"""Running the scaling benchmark: bringing the stacks up, calibrating the CPU-bound route,
checking that every path answers what is measured, then each phase: a wrk run with the CPU time of
every process around it (tests/harness/procstat.py) and each instance's count of answers."""

import json
import signal
import statistics
import time
import urllib.error
import urllib.request

from tests.harness import procstat, wrk

from .measured import (CONFIGS, COST_TARGET_MS, OTHERS_WARN_CPUS, PER_SOURCE_OUT_OF_REACH, ROUTES,
                       BenchError, configs_for)

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
            groups[name] = [master] + procstat.children_of(master)
        main = self.stacks["haproxy"]
        for instance in main.instances.values():
            if instance.process is None or instance.process.exited():
                raise BenchError(f"{instance.id} is not running (log {instance.log_path})")
            groups[instance.id] = [instance.process.pid]
        return groups


def ticks_of(groups):
    return {name: procstat.total_cpu_ticks(pids) for name, pids in groups.items()}


def cpu_during(groups, run, others="others"):
    """Calls run() (one wrk run) and reads what it cost: (its result, {group: CPU seconds of
    that group's pids meanwhile, "wrk": wrk's own, others: the rest of the machine's busy
    time}, the machine's busy seconds)."""
    before, busy_before = ticks_of(groups), procstat.machine_busy_ticks()
    result = run()
    busy_after, after = procstat.machine_busy_ticks(), ticks_of(groups)
    cpu = {name: (after[name] - before[name]) / procstat.CLK_TCK for name in groups}
    cpu["wrk"] = result.cpu_seconds
    machine = (busy_after - busy_before) / procstat.CLK_TCK
    cpu[others] = max(0.0, machine - sum(cpu.values()))
    return result, cpu, machine


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
    """One wrk run (tests/harness/wrk.py), its output kept in the work directory."""
    return wrk.run(url, route.script, args.connections, seconds,
                   log_path=workdir / f"wrk-{name}.txt", latency=True, script_args=extra)


def measure(args, route, config, url, extra, tracked, stack, workdir, number, total):
    label = CONFIGS[config].format(alt=args.balance["alternative"])
    print(f"[{number:>2}/{total}] {route.title:<18} {label:<34} "
          f"{args.warmup} s warm-up + {args.duration} s ...", flush=True)
    if args.warmup:
        run_wrk(args, route, url, args.warmup, extra, workdir, f"{route.key}-{config}-warmup")
    groups = tracked.pids()
    path = "/api/" + route.key
    served_before = served_counts(stack, path)
    result, cpu, machine = cpu_during(groups, lambda: run_wrk(
        args, route, url, args.duration, extra, workdir, f"{route.key}-{config}"))
    served_after = served_counts(stack, path)
    tracked.pids()  # Raises if an instance died during the run.
    run, session = result.line("WRK-JSON"), result.line("WRK-SESSION", required=False)

    seconds = run["duration_us"] / 1e6
    requests = run["requests"]
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
    # Imported here: it needs python3-jinja2 and python3-yaml, which cli.prerequisites checks.
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
    info = {"haproxy_threads": {name: [procstat.thread_count(pid)
                                           for pid in procstat.children_of(s.haproxy.pid)]
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
    info["loadavg_end"] = procstat.loadavg()
    return phases, info
