"""Running the TLS benchmark: the local stack, a check that both listeners answer what is
measured, then each phase: h2load (once, or in rounds) with the CPU time of HAProxy, of the
instances and of h2load around it (tests/harness/procstat.py), and HAProxy's own count of the
connections and TLS handshakes it made meanwhile."""

import json
import math
import ssl
import time
import urllib.error
import urllib.request

from tests.harness import procstat

from bench.scaling.measured import BenchError
from bench.scaling.phases import stop_instances_fast

from . import h2load
from .measured import (OTHERS_WARN_CPUS, PATH, PHASES, REFERENCE, ROUND_CLIENTS, STREAMS,
                       WARMUP_SHARE)

# --- checks ---------------------------------------------------------------------------------


def check_answers(stack):
    """GET /api/whoami over plain HTTP and over HTTPS (trusting the stack's self-signed
    certificate): 200, JSON from an instance, and HAProxy's stickiness cookie marked Secure over
    HTTPS only, which shows the request really came through the TLS listener. Nothing is measured
    otherwise."""
    context = ssl.create_default_context(cafile=str(stack.ca_file))
    for name, url, secure in (("HTTP", stack.url(PATH), False),
                              ("HTTPS", stack.https_url(PATH), True)):
        try:
            with urllib.request.urlopen(url, timeout=10,
                                        context=context if secure else None) as answer:
                status, body = answer.status, answer.read()
                cookies = answer.headers.get_all("Set-Cookie") or []
                kind = answer.headers.get("Content-Type", "")
        except (OSError, urllib.error.URLError) as error:
            raise BenchError(f"GET {PATH} over {name} ({url}): {error}") from error
        problems = []
        if status != 200:
            problems.append(f"status {status}")
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not kind.startswith("application/json") or not isinstance(doc, dict) \
                or "container" not in doc:
            problems.append(f"not an instance's JSON: {body[:120]!r}")
        sticky = [c for c in cookies if c.startswith(stack.variables["tandem_lb_cookie_name"])]
        if not sticky or any(("; Secure" in c) != secure for c in sticky):
            problems.append(f"stickiness cookie {sticky!r} (Secure expected over HTTPS only)")
        if problems:
            raise BenchError(f"GET {PATH} over {name} is not what is measured: "
                             + "; ".join(problems))


# --- HAProxy's counters ---------------------------------------------------------------------


def haproxy_counters(stack):
    """HAProxy's cumulative counts: connections and requests of the public frontend (show stat),
    TLS connections and session-cache lookups and misses of the process (show info). A resumed
    session is a lookup that found its session."""
    frontend = next((row for row in stack.api.show_stat()
                     if row["pxname"] == "public" and row["svname"] == "FRONTEND"), None)
    if frontend is None:
        raise BenchError("HAProxy's show stat lists no frontend public")
    info = dict(line.split(": ", 1) for line in stack.api.command("show info").splitlines()
                if ": " in line)
    try:
        return {"connections": int(frontend["conn_tot"]), "requests": int(frontend["req_tot"]),
                "tls_connections": int(info["CumSslConns"]),
                "cache_lookups": int(info["SslCacheLookups"]),
                "cache_misses": int(info["SslCacheMisses"])}
    except (KeyError, ValueError) as error:
        raise BenchError(f"HAProxy's counters lack {error}") from error


def counted(before, after):
    delta = {key: after[key] - before[key] for key in after}
    return {"connections": delta["connections"], "requests": delta["requests"],
            "tls_handshakes": delta["tls_connections"],
            "resumed": delta["cache_lookups"] - delta["cache_misses"]}


# --- one phase ------------------------------------------------------------------------------


def runs_of(phase, stack, requests, connections):
    """The h2load command lines of one phase: one, or the rounds of a full-handshake phase."""
    url = (stack.https_url if phase.scheme == "https" else stack.url)(PATH)
    h1 = phase.protocol == "http/1.1"
    if phase.connections == "keep-alive":
        streams = STREAMS if phase.protocol == "h2" else 1
        return [h2load.command(url, requests, connections, h1=h1, streams=streams)]
    if phase.connections == "close":
        # Each answer closes its connection (HAProxy honours the client's Connection: close);
        # h2load reconnects for the client's next request and offers the TLS session it had.
        return [h2load.command(url, requests, connections, h1=h1, headers=["Connection: close"])]
    # Rounds: every client of a round does one request on its own connection, then closes.
    rounds = math.ceil(requests / ROUND_CLIENTS)
    sizes = [ROUND_CLIENTS] * (rounds - 1) + [requests - ROUND_CLIENTS * (rounds - 1)]
    return [h2load.command(url, size, size, h1=h1) for size in sizes]


def run_all(argvs, workdir, name):
    return h2load.combine([h2load.run(argv, workdir / f"h2load-{name}.txt") for argv in argvs])


def pids_of(stack):
    groups = {"haproxy": [stack.haproxy.pid] + procstat.children_of(stack.haproxy.pid)}
    for instance in stack.instances.values():
        if instance.process is None or instance.process.exited():
            raise BenchError(f"{instance.id} is not running (log {instance.log_path})")
        groups[instance.id] = [instance.process.pid]
    return groups


def measure(args, phase, stack, workdir, number, total):
    requests = args.new_connections if phase.new_connection_per_request else args.requests
    argvs = runs_of(phase, stack, requests, args.connections)
    how = {"keep-alive": f"{args.connections} connections kept",
           "close": f"{args.connections} clients, Connection: close",
           "rounds": f"{len(argvs)} round(s) of up to {ROUND_CLIENTS} one-request clients"}
    print(f"[{number}/{total}] {phase.title:<40} {requests:>7,} requests, "
          f"{how[phase.connections]} ...", flush=True)
    if not args.smoke:
        # At least one request per client: h2load refuses fewer requests than clients.
        warmup = max(args.connections, round(requests * WARMUP_SHARE))
        run_all(runs_of(phase, stack, warmup, args.connections), workdir, f"{phase.key}-warmup")

    groups = pids_of(stack)
    before = {name: procstat.total_cpu_ticks(pids) for name, pids in groups.items()}
    counters_before = haproxy_counters(stack)
    busy_before, started = procstat.machine_busy_ticks(), time.monotonic()
    result = run_all(argvs, workdir, phase.key)
    busy_after, wall = procstat.machine_busy_ticks(), time.monotonic() - started
    counters_after = haproxy_counters(stack)
    after = {name: procstat.total_cpu_ticks(pids) for name, pids in groups.items()}
    pids_of(stack)  # Raises if an instance died during the run.

    cpu = {name: (after[name] - before[name]) / procstat.CLK_TCK for name in groups}
    cpu["h2load"] = result.cpu_seconds
    machine = (busy_after - busy_before) / procstat.CLK_TCK
    cpu["others"] = max(0.0, machine - sum(cpu.values()))
    done = result.requests["done"]
    instances = [name for name in groups if name.startswith("app-")]

    def per_request(names):
        return sum(cpu[n] for n in names) * 1e6 / done if done else None

    # Every request asked for that did not end with a 2xx answer: h2load's failed (4xx, 5xx, no
    # answer), its timeouts, the 3xx it counts as succeeded, the requests never done.
    failed = requests - result.statuses["2xx"]
    problems = []
    if failed:
        problems.append(f"{failed} of {requests} requests without a 2xx answer (h2load: "
                        + ", ".join(f"{v} {k}" for k, v in result.requests.items()) + "; "
                        + ", ".join(f"{v} {k}" for k, v in result.statuses.items()) + ")")
    if result.protocol != phase.protocol:
        problems.append(f"negotiated {result.protocol or 'nothing'}, not {phase.protocol}")
    seen = counted(counters_before, counters_after)
    problems += made_as_said(phase, seen, requests, args.connections)
    entry = {
        "key": phase.key, "title": phase.title, "scheme": phase.scheme,
        "protocol_wanted": phase.protocol, "protocol": result.protocol, "tls": result.tls,
        "connections_mode": phase.connections, "clients": args.connections,
        "h2load_runs": len(argvs), "h2load_argv": result.argv,
        "requests": done, "seconds": round(result.seconds, 3), "wall_seconds": round(wall, 3),
        "rps": round(done / result.seconds, 1) if result.seconds else None,
        "request_mean_ms": (round(result.request_mean_us / 1000, 3)
                            if result.request_mean_us is not None else None),
        "failed": failed, "h2load_requests": result.requests, "statuses": result.statuses,
        "haproxy_counted": seen,
        "cpu_s": {k: round(v, 3) for k, v in cpu.items()},
        "machine_busy_s": round(machine, 3),
        "others_cpus": round(cpu["others"] / wall, 3) if wall else None,
        "cpu_us_per_request": {"haproxy": per_request(["haproxy"]),
                               "instances": per_request(instances),
                               "h2load": per_request(["h2load"])},
        "problems": problems,
    }
    print("      " + describe(entry), flush=True)
    if entry["others_cpus"] is not None and entry["others_cpus"] >= OTHERS_WARN_CPUS:
        print(f"      warning: other work kept {entry['others_cpus']:.2f} CPU busy during this "
              "phase; its figures are noisy, re-run on a quieter machine", flush=True)
    return entry


def made_as_said(phase, seen, requests, clients):
    """What HAProxy counted against what the phase is meant to make it do: a connection per
    request, each TLS one a full handshake, or a resumed one after each client's first."""
    problems = []
    if phase.new_connection_per_request and seen["connections"] < requests:
        problems.append(f"HAProxy saw {seen['connections']} connections for {requests} "
                        "requests, each meant to come on its own")
    if phase.scheme != "https" or not phase.new_connection_per_request:
        return problems
    if seen["tls_handshakes"] < requests:
        problems.append(f"{seen['tls_handshakes']} TLS handshakes for {requests} requests")
    if phase.connections == "rounds" and seen["resumed"]:
        problems.append(f"{seen['resumed']} resumed sessions where every handshake is meant "
                        "to be full")
    if phase.connections == "close" and seen["resumed"] < requests - clients:
        problems.append(f"only {seen['resumed']} of {requests} sessions resumed (each client's "
                        "first connection aside, all are meant to be)")
    return problems


def describe(entry):
    per = entry["cpu_us_per_request"]
    seen = entry["haproxy_counted"]
    parts = [f"{entry['rps']:>9,.0f} req/s", f"failed {entry['failed']}",
             f"protocol {entry['protocol']}"]
    if entry["tls"]:
        parts.append(f"{entry['tls'].get('protocol', '?')} {entry['tls'].get('cipher', '?')}")
    parts += [f"HAProxy: {seen['connections']:,} connections, {seen['tls_handshakes']:,} TLS "
              f"({seen['resumed']:,} resumed)",
              "us/req: HAProxy {} instances {} h2load {}".format(
                  *(fmt(per[k]) for k in ("haproxy", "instances", "h2load"))),
              f"others {entry['others_cpus']:.2f} CPU"]
    text = "  ".join(parts)
    if entry["problems"]:
        text += "  INVALID: " + ", ".join(entry["problems"])
    return text


def fmt(value, spec=".1f"):
    return "–" if value is None else format(value, spec)


def add_ratios(phases):
    """Each phase's HAProxy µs per request against the reference phase's (plain HTTP/1.1)."""
    reference = next(p for p in phases if p["key"] == REFERENCE)
    base = reference["cpu_us_per_request"]["haproxy"]
    for phase in phases:
        mine = phase["cpu_us_per_request"]["haproxy"]
        phase["haproxy_ratio"] = round(mine / base, 2) if mine and base else None
        phase["rps_ratio"] = (round(phase["rps"] / reference["rps"], 3)
                              if phase["rps"] and reference["rps"] else None)


# --- the run --------------------------------------------------------------------------------


def run_phases(args, server_bin, workdir):
    """Brings the stack up, checks it, runs every phase; returns (phases, info)."""
    # Imported here: it needs python3-jinja2 and python3-yaml, which cli.prerequisites checks.
    from tests.harness.stack import ONE_ADDRESS_CROWD, Stack

    print("== bringing up the stack: HAProxy (as deployed, per-source limits off) + app-1 + "
          "app-2", flush=True)
    # As deployed but for the per-source limits: every request comes from 127.0.0.1, which they
    # would rightly take for one client (the connection rate alone would close the 1,001st new
    # connection of ten seconds).
    with Stack(instances=2, server_bin=server_bin, overrides=ONE_ADDRESS_CROWD) as stack:
        try:
            worker_threads = [procstat.thread_count(pid)
                              for pid in procstat.children_of(stack.haproxy.pid)]
            print(f"   HAProxy   {stack.url()}  {stack.https_url()}  worker threads "
                  f"{worker_threads}  (work directory {stack.workdir})", flush=True)
            for instance in stack.instances.values():
                print(f"   {instance.id:<9} {instance.url()}  pid {instance.process.pid}",
                      flush=True)
            check_answers(stack)
            print(f"== answers checked: GET {PATH} gives an instance's JSON over HTTP and HTTPS",
                  flush=True)
            phases = [measure(args, phase, stack, workdir, number, len(PHASES))
                      for number, phase in enumerate(PHASES, 1)]
        finally:
            stop_instances_fast(stack)
    add_ratios(phases)
    return phases, {"haproxy_threads": worker_threads, "loadavg_end": procstat.loadavg()}
