"""The deployed benchmark's figures and verdicts, the summary it prints, report.md and chart.png."""

from bench.scaling.measured import P99_RATIO_MAX, RPS_RATIO_MIN
from bench.scaling import report as scaling_report

from .guest import FRONT, INSTANCES
from .phases import CPUS

# Targets of the front on the cheap route, two instances in rotation, with the deployed logging.
FRONT_US_MAX = 20.0          # CPU µs per request of HAProxy plus what records its requests
FRONT_PER_INSTANCE_MAX = 2.5  # ... against the instances' own µs per request
DIRECT_SHARE_MIN = 0.50      # req/s through :80 against direct to one instance
# Processes named as a phase's bottleneck: the front, the instances, the load generator.
CANDIDATES = FRONT + tuple(INSTANCES) + ("wrk",)


def find(phases, key):
    return next((p for p in phases if p["key"] == key), None)


def verdict(ok, valid):
    if not valid:
        return "not judged (errors counted)"
    return "PASS" if ok else "MISS"


def sum_us(phase, names):
    values = [phase["cpu_us_per_request"].get(n) for n in names]
    return round(sum(v for v in values if v is not None), 2)


def bottleneck(phase):
    """The process that kept its core busiest, how busy, and how much of the machine was used."""
    busy = phase["cores_busy"]
    name = max(CANDIDATES, key=lambda n: busy.get(n, 0.0))
    ceiling_rps, reached = ceiling(phase)
    return {"process": name, "core_share": busy.get(name, 0.0),
            "machine_used": phase["machine_used"], "ceiling_rps": ceiling_rps,
            "ceiling_reached": reached}


def ceiling(phase):
    """What the machine's cores allow at this phase's CPU per request (every process on it, wrk
    included): requests/s with all of them busy, and how much of it the run reached."""
    total = sum(v for v in phase["cpu_us_per_request"].values() if v is not None)
    if not total:
        return None, None
    rps = CPUS * 1e6 / total
    return round(rps, 1), round(phase["rps"] / rps, 3)


def figures(phases):
    out = {"cheap": {}, "cpu_bound": {}, "bottlenecks": {}}
    direct = find(phases, "cheap-direct")
    for key in ("cheap-front-1", "cheap-front-2"):
        via = find(phases, key)
        if not direct or not via:
            continue
        valid = not direct["problems"] and not via["problems"]
        front_us = sum_us(via, FRONT)
        instances_us = sum_us(via, INSTANCES)
        share = round(via["rps"] / direct["rps"], 3) if direct["rps"] else 0.0
        per_instance = round(front_us / instances_us, 3) if instances_us else float("inf")
        ceiling_rps, _ = ceiling(via)
        out["cheap"][key] = {
            # The best share of the direct req/s these CPU costs allow on this machine.
            "ceiling_direct_share": round(ceiling_rps / direct["rps"], 3)
            if ceiling_rps and direct["rps"] else None,
            "front_us": front_us, "instances_us": instances_us,
            "direct_instance_us": sum_us(direct, INSTANCES),
            "front_per_instance": per_instance, "direct_share": share,
            "front_verdict": verdict(front_us <= FRONT_US_MAX, valid),
            "front_per_instance_verdict": verdict(per_instance <= FRONT_PER_INSTANCE_MAX, valid),
            "direct_share_verdict": verdict(share >= DIRECT_SHARE_MIN, valid),
        }
    one, two = find(phases, "cpu-front-1"), find(phases, "cpu-front-2")
    if one and two:
        valid = not one["problems"] and not two["problems"]
        rps_ratio = round(two["rps"] / one["rps"], 3) if one["rps"] else 0.0
        p99_one = one["latency_ms"].get("p99") or 0.0
        p99_ratio = round(two["latency_ms"].get("p99", 0.0) / p99_one, 3) if p99_one else \
            float("inf")
        ceiling_rps, _ = ceiling(two)
        out["cpu_bound"] = {
            "rps_ratio": rps_ratio, "p99_ratio": p99_ratio,
            # The ratio the machine's cores allow at the two-instance phase's CPU per request.
            "ceiling_ratio": round(ceiling_rps / one["rps"], 3) if ceiling_rps and one["rps"]
            else None,
            "rps_verdict": verdict(rps_ratio >= RPS_RATIO_MIN, valid),
            "p99_verdict": verdict(p99_ratio <= P99_RATIO_MAX, valid),
        }
    for phase in phases:
        out["bottlenecks"][phase["key"]] = bottleneck(phase)
    return out


fmt = scaling_report.fmt


def pct(fraction):
    return None if fraction is None else fraction * 100


def print_summary(report):
    figs = report["figures"]
    print("\n== summary (CPU µs per request; ratios from this run)")
    for key, f in figs["cheap"].items():
        print(f"   cheap route, {key.removeprefix('cheap-front-')} instance(s) through :80: "
              f"front {f['front_us']:.1f} µs/req (target <= {FRONT_US_MAX:g}) "
              f"{f['front_verdict']}; {f['front_per_instance']:.2f}x the instances' "
              f"{f['instances_us']:.1f} (target <= {FRONT_PER_INSTANCE_MAX:g}x) "
              f"{f['front_per_instance_verdict']}; {f['direct_share']:.1%} of direct req/s "
              f"(target >= {DIRECT_SHARE_MIN:.0%}) {f['direct_share_verdict']}; these CPU costs "
              f"allow at most {fmt(pct(f['ceiling_direct_share']), '.1f')}% on this machine")
    c = figs["cpu_bound"]
    if c:
        print(f"   CPU-bound, 2 instances / 1 ({report['meta']['balance']}): "
              f"req/s x{c['rps_ratio']:.3f} "
              f"(target >= {RPS_RATIO_MIN}) {c['rps_verdict']}; p99 x{c['p99_ratio']:.3f} "
              f"(target <= {P99_RATIO_MAX}) {c['p99_verdict']}; the cores allow at most "
              f"x{fmt(c['ceiling_ratio'], '.3f')} at this CPU per request")
    for key, b in figs["bottlenecks"].items():
        print(f"   {key:<14} bottleneck {b['process']} ({b['core_share']:.0%} of a core); "
              f"machine {fmt(pct(b['machine_used']), '.0f')}% of its "
              f"{report['meta']['machine']['cpus']} cores busy; "
              f"{fmt(pct(b['ceiling_reached']), '.0f')}% of the {fmt(b['ceiling_rps'], '.0f')} "
              "req/s they allow at this CPU per request")


def markdown(report):
    meta, figs, phases = report["meta"], report["figures"], report["phases"]
    lines = [
        "# tandem deployed benchmark" + (" (SMOKE RUN: figures not meaningful)"
                                         if meta["smoke"] else ""),
        "",
        f"{meta['date']} on {meta['machine']['host']}, {meta['machine']['cpus']} CPUs "
        f"({meta['machine']['cpu_model']}); package {meta['package']}, commit {meta['commit']}; "
        f"{meta['haproxy_version']} (worker threads: "
        f"{', '.join(map(str, meta['haproxy_threads']))}), balance "
        f"{meta['balance']}; {meta['wrk_version']}, `wrk -t1 -c{meta['connections']}` for "
        f"{meta['duration']} s per phase after {meta['warmup']} s of warm-up.",
        "",
        "Deployed with `ansible-playbook deploy.yml` into a systemd guest (as `./up` does), with "
        "these variables beside the roles' defaults: "
        + ", ".join(f"`{k}={v}`" for k, v in meta["deploy_vars"].items()) + ".",
        "",
        "## Phases",
        "",
        "| phase | req/s | p50 ms | p99 ms | errors | HAProxy µs/req | journald µs/req | "
        "app-1 µs/req | app-2 µs/req | guest others µs/req | wrk µs/req | bottleneck | "
        "machine busy | of the ceiling |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for p in phases:
        us, lat = p["cpu_us_per_request"], p["latency_ms"]
        b = figs["bottlenecks"][p["key"]]
        lines.append(
            f"| {p['route_title']}, {p['label']} | {p['rps']:.0f} | {fmt(lat.get('p50'), '.2f')} | "
            f"{fmt(lat.get('p99'), '.2f')} | {sum(p['errors'].values())} | {fmt(us['haproxy'])} | "
            f"{fmt(us['journald'])} | {fmt(us['app-1'])} | {fmt(us['app-2'])} | "
            f"{fmt(us['guest-others'])} | {fmt(us['wrk'])} | {b['process']} "
            f"({b['core_share']:.0%} of a core) | {fmt(pct(b['machine_used']), '.0f')} % | "
            f"{fmt(pct(b['ceiling_reached']), '.0f')} % of {fmt(b['ceiling_rps'], '.0f')}/s |")
    lines += ["", "## Verdicts", ""]
    for key, f in figs["cheap"].items():
        count = key.removeprefix("cheap-front-")
        lines += [
            f"- Cheap route through :80, {count} instance{'s' if count != '1' else ''}: the front "
            f"(HAProxy + journald) spends **{f['front_us']:.1f} µs** per request (target ≤ "
            f"{FRONT_US_MAX:g}): {f['front_verdict']}; **{f['front_per_instance']:.2f}×** the "
            f"instances' {f['instances_us']:.1f} µs (target ≤ {FRONT_PER_INSTANCE_MAX:g}×): "
            f"{f['front_per_instance_verdict']}; **{f['direct_share']:.1%}** of the direct req/s "
            f"(target ≥ {DIRECT_SHARE_MIN:.0%}): {f['direct_share_verdict']}; at these CPU "
            f"costs per request the machine's cores allow at most "
            f"{fmt(pct(f['ceiling_direct_share']), '.1f')} %.",
        ]
    c = figs["cpu_bound"]
    if c:
        lines.append(
            f"- CPU-bound route, two instances against one, balance {meta['balance']}: req/s "
            f"**×{c['rps_ratio']:.3f}** (target ≥ {RPS_RATIO_MIN}): {c['rps_verdict']}; p99 "
            f"**×{c['p99_ratio']:.3f}** (target ≤ {P99_RATIO_MAX}): {c['p99_verdict']}; at the "
            f"two-instance phase's CPU per request the cores allow at most "
            f"×{fmt(c['ceiling_ratio'], '.3f')}.")
    lines += ["", "The CPU figures are each process's user + system time over the measured run, "
              "read from /proc on the host (the guest's processes are the host's), divided by the "
              "requests wrk completed. *machine busy* is the whole machine's busy time against all "
              "its cores: near 100 % the run was CPU-bound, and a faster process elsewhere would "
              "only move the bottleneck. *The ceiling* is the req/s all the cores would give at "
              "the phase's CPU per request, every process counted (wrk too, which shares the "
              "cores here): a run at 100 % of it cannot go faster on this machine whatever the "
              "configuration, only by spending less CPU per request.", ""]
    return "\n".join(lines)


def chart(report, folder, workdir):
    """chart.png: per phase, req/s beside the CPU µs per request of each process, stacked."""
    phases = report["phases"]
    names = ("haproxy", "journald", "app-1", "app-2", "guest-others", "wrk")
    colours = ("#d95f02", "#e6ab02", "#1b9e77", "#66a61e", "#a6761d", "#7570b3")
    data = workdir / "deployed.dat"
    with open(data, "w", encoding="utf-8") as out:
        for p in phases:
            short = p["label"].replace("direct to app-1 (:3001)", "direct").replace(
                "through :80, ", ":80, ")
            us = [p["cpu_us_per_request"].get(n) or 0.0 for n in names]
            out.write(f"\"{p['route_title'].removeprefix('GET /api/')}: {short}\" {p['rps']:.1f} "
                      + " ".join(f"{v:.3f}" for v in us) + "\n")
    meta = report["meta"]
    title = (f"tandem as deployed: {meta['machine']['host']}, {meta['machine']['cpus']} CPUs, "
             f"{meta['date']}, wrk -t1 -c{meta['connections']} {meta['duration']} s per phase"
             + (" (SMOKE RUN)" if meta["smoke"] else ""))
    stacked = ", ".join(
        f"{source} using {i + 3}:xtic(1) title '{name}' lc rgb '{colour}'"
        for i, (name, colour) in enumerate(zip(names, colours))
        for source in ([f"'{data}'"] if i == 0 else ["''"]))
    script = [
        "set terminal pngcairo size 1400,620 font 'DejaVu Sans,10'",
        f"set output '{folder / 'chart.png'}'",
        f"set multiplot layout 1,2 title '{title}' font ',12' noenhanced",
        "set style fill solid 0.85 border rgb '#333333'",
        "set grid ytics lc rgb '#dddddd'",
        "set xtics nomirror noenhanced rotate by -30 scale 0",
        "set border 3", "set yrange [0:*]", "set ytics nomirror",
        "set title 'requests/s (higher is better)'", "unset key", "set boxwidth 0.6",
        f"plot '{data}' using 0:2:xtic(1) with boxes lc rgb '#1b9e77', '' using 0:2:"
        "(sprintf('%.0f', $2)) with labels offset 0,0.8 font ',9'",
        "set title 'CPU µs per request, by process (lower is better)'",
        "set key top left noenhanced", "set style data histograms",
        "set style histogram rowstacked", "set boxwidth 0.6 relative",
        f"plot {stacked}",
        "unset multiplot",
    ]
    scaling_report.gnuplot(script, workdir / "deployed.gp", folder / "chart.png")


def write_results(args, report, workdir):
    return scaling_report.write_results(args, report, workdir, markdown, chart)
