"""Running the deployed benchmark's phases: each a wrk run from this machine, with the CPU time of
every process on the path read around it (tests/harness/procstat.py)."""

import os

from tests.harness import wrk

from bench.scaling.measured import ROUTES, BenchError
from bench.scaling.phases import calibrate, cpu_during, http

from .guest import INSTANCES, LB_URL

CPUS = os.cpu_count() or 1
DIRECT_URL = f"http://127.0.0.1:{INSTANCES['app-1']}"
# The phases, in the order they run: key, route, where wrk sends, instances in rotation.
PHASES = (
    ("cheap-direct", "whoami", "direct", 1),
    ("cheap-front-1", "whoami", "front", 1),
    ("cheap-front-2", "whoami", "front", 2),
    ("cpu-front-1", "load-test", "front", 1),
    ("cpu-front-2", "load-test", "front", 2),
)
LABELS = {"direct": "direct to app-1 (:3001)", "front": "through :80"}


def label(phase):
    where, count = phase["where"], phase["instances"]
    if where == "direct":
        return LABELS[where]
    return f"{LABELS[where]}, {count} instance{'s' if count > 1 else ''}"


def check_answers():
    """Every path answers what is measured, before anything is measured."""
    for url in (DIRECT_URL, LB_URL):
        status, headers, doc = http(f"{url}/api/whoami")
        if status != 200 or not isinstance(doc, dict) or "pid" not in doc:
            raise BenchError(f"{url}/api/whoami answered {status}: {doc!r:.200}")
        if url == LB_URL and not headers.get("x-request-id"):
            raise BenchError(f"{url}/api/whoami has no X-Request-ID: the front is not the one "
                             "deployed")


def set_rotation(deployment, count):
    """app-2 in maintenance for one instance, back in rotation for two; waits until HAProxy
    has done it (tandemctl's own waits)."""
    if count == 1:
        deployment.ctl("maint", "app-2", "--wait=30")
    else:
        deployment.ctl("ready", "app-2", "--wait=30")


def measure(args, deployment, key, route_key, where, count, extra, workdir, number):
    route = ROUTES[route_key]
    url = DIRECT_URL if where == "direct" else LB_URL
    phase = {"key": key, "route": route_key, "route_title": route.title, "where": where,
             "instances": count, "url": url, "wrk_args": extra,
             "connections": args.connections}
    phase["label"] = label(phase)
    print(f"[{number}/{len(PHASES)}] {route.title:<18} {phase['label']:<28} "
          f"{args.warmup} s warm-up + {args.duration} s ...", flush=True)
    if args.warmup:
        wrk.run(url, route.script, args.connections, args.warmup, latency=True,
                script_args=extra, log_path=workdir / f"wrk-{key}-warmup.txt")
    result, cpu, machine = cpu_during(deployment.processes(), lambda: wrk.run(
        url, route.script, args.connections, args.duration, latency=True, script_args=extra,
        log_path=workdir / f"wrk-{key}.txt"), others="machine-others")
    deployment.processes()  # Raises if an instance, HAProxy or the journal died meanwhile.
    run = result.line("WRK-JSON")

    seconds = run["duration_us"] / 1e6
    requests = run["requests"]
    errors = dict(run["errors"])
    problems = [f"{n} {kind}" for kind, n in errors.items() if n]
    if requests == 0:
        problems.append("no request completed")
    per_request = {name: (seconds_used * 1e6 / requests if requests else None)
                   for name, seconds_used in cpu.items()}
    lat = run["latency_us"]
    phase.update({
        "seconds": round(seconds, 3), "requests": requests, "rps": round(run["rps"], 1),
        "latency_ms": {k: lat[k] / 1000 for k in ("p50", "p90", "p99", "max") if k in lat},
        "errors": errors, "problems": problems,
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "cpu_us_per_request": {k: (round(v, 2) if v is not None else None)
                               for k, v in per_request.items()},
        # Fractions of one core each process kept busy, and of the machine's cores in all.
        "cores_busy": {k: round(v / seconds, 3) for k, v in cpu.items()} if seconds else {},
        "machine_busy_s": round(machine, 3),
        "machine_used": round(machine / (seconds * CPUS), 3) if seconds else None,
    })
    us = phase["cpu_us_per_request"]
    print(f"        {phase['rps']:>9.0f} req/s  p99 {phase['latency_ms'].get('p99', 0):7.2f} ms  "
          f"µs/req: HAProxy {us['haproxy'] or 0:.1f} · journald {us['journald'] or 0:.1f} · "
          f"app-1 {us['app-1'] or 0:.1f} · app-2 {us['app-2'] or 0:.1f} · "
          f"wrk {us['wrk'] or 0:.1f}"
          + (f"  ERRORS: {', '.join(problems)}" if problems else ""), flush=True)
    return phase


def run_phases(args, deployment, workdir):
    check_answers()
    calibration = calibrate(DIRECT_URL, args.smoke)
    print(f"   CPU-bound route: iterations={calibration['iterations']} "
          f"({calibration['processing_ms_median']} ms each)", flush=True)
    phases = []
    rotation = 2
    for number, (key, route, where, count) in enumerate(PHASES, start=1):
        if where == "front" and count != rotation:
            set_rotation(deployment, count)
            rotation = count
        extra = [str(calibration["iterations"])] if route == "load-test" else []
        phases.append(measure(args, deployment, key, route, where, count, extra, workdir,
                              number))
    if rotation != 2:
        set_rotation(deployment, 2)
    return phases, calibration
