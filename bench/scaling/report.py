"""What a scaling run leaves: the summary it prints, report.md, chart.png (gnuplot), and the
results folder that holds them with run.json."""

import datetime
import json
import os
import pathlib
import shutil
import subprocess

from .measured import (COST_TARGET_MS, OTHERS_WARN_CPUS, P99_RATIO_MAX, ROUTES, RPS_RATIO_MIN,
                       SHORT, BenchError)


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


def machine_lines(meta):
    """The report's lines about the run's machine, its load, and the tandem-server measured."""
    m = meta["machine"]
    return [
        f"- machine: {m['host']}, {m['cpus']} CPUs ({m['cpu_model']}), {m['memory']}, "
        f"Linux {m['kernel']}",
        f"- load average at the start {meta['loadavg_start']}, at the end "
        f"{meta.get('loadavg_end', '?')}; busy CPUs just before: {meta['busy_cpus_before']:.2f}",
        f"- tandem-server {meta['server_version']} ({meta['server']}), commit {meta['commit']}",
    ]


def markdown(report):
    meta, figs, phases = report["meta"], report["figures"], report["phases"]
    lines = [
        f"# tandem scaling benchmark, {meta['date']}",
        "",
        *machine_lines(meta),
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
    gnuplot(script, workdir / "chart.gp", folder / "chart.png")


def gnuplot(script, gp, png):
    """Writes script (lines) to gp, runs gnuplot on it; raises BenchError unless png was drawn."""
    gp.write_text("\n".join(script) + "\n", encoding="utf-8")
    result = subprocess.run(["gnuplot", str(gp)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=60, check=False)
    if result.returncode != 0 or not png.exists():
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


def write_results(args, report, workdir, write_markdown=None, draw_chart=None):
    """run.json, report.md and chart.png in a new results folder (renamed into place whole, so a
    failed run leaves none); another benchmark passes its own markdown and chart."""
    write_markdown, draw_chart = write_markdown or markdown, draw_chart or chart
    folder, staging = results_folder(args)
    staging.mkdir(parents=True, exist_ok=False)
    try:
        (staging / "run.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        (staging / "report.md").write_text(write_markdown(report), encoding="utf-8")
        draw_chart(report, staging, workdir)
        if staging != folder:
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
    except BaseException:
        if staging != folder:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder
