#!/usr/bin/env python3
"""Reads the runs that server-vs-nginx.sh recorded and reports one run or the whole comparison.

A run file holds wrk's output, including the `WRK-JSON {...}` line from wrk-json.lua, followed by
a `SERVER-CPU {"ticks":T,"clk_tck":HZ}` line the runner (tests/harness/wrk.py) appends: the CPU
time the measured server's processes used during the run, read from /proc/PID/stat before and
after, and the busy time of the whole machine from /proc/stat. wrk's own CPU time (`client_cpu_ticks`, whole run) shows
whether one wrk thread was the bottleneck; what is left of the machine's busy time ("others")
shows how much other work made the run noisy.

  wrk_report.py line FILE
      One line: requests/s, latency percentiles, server and wrk CPU. Exit 1 when the run is INVALID
      (socket errors, HTTP statuses >= 400, no requests), 4 when FILE cannot be parsed.
  wrk_report.py summary --dir DIR --rounds N [--memory FILE] [--meta KEY=VALUE]... [--json OUT]
      Medians of DIR/round-<i>-{tandem,nginx}.txt and the ratios against the targets.
      Exit 0 when every target is met, 3 when one is missed, 1 when a run is INVALID, 4 on a
      parse failure.
Standard library only (with tests/harness/wrk.py, which reads the lines).
"""

import argparse
import json
import pathlib
import statistics
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tests.harness import wrk  # noqa: E402  (the repository's, standard library only)

RPS_RATIO_MIN = 1.0  # tandem-server's requests/s at least nginx's.
P99_RATIO_MAX = 1.5  # tandem-server's p99 latency at most 1.5 times nginx's.
LABELS = (("tandem", "tandem-server"), ("nginx", "nginx"))


class ParseError(Exception):
    """A run file without the lines the runner and wrk-json.lua write."""


def load(path):
    """Returns the WRK-JSON object of a run file, with `server_cpu_s` added when recorded."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            found = wrk.json_lines(f.read())
    except OSError as exc:
        raise ParseError(f"{path}: {exc}") from exc
    run, cpu = found.get("WRK-JSON"), found.get("SERVER-CPU")
    if run is None:
        raise ParseError(f"{path}: no WRK-JSON line (did wrk run with -s wrk-json.lua?)")
    for key in ("requests", "rps", "errors", "latency_us", "bytes"):
        if key not in run:
            raise ParseError(f"{path}: WRK-JSON has no '{key}'")
    if cpu is not None and cpu.get("clk_tck"):
        run["server_cpu_s"] = cpu["ticks"] / cpu["clk_tck"]
        if run.get("client_cpu_ticks", -1) >= 0:
            run["client_cpu_s"] = run["client_cpu_ticks"] / cpu["clk_tck"]
            if "machine_busy_ticks" in cpu:
                # Everything else the machine did meanwhile (other users, kernel threads).
                others = cpu["machine_busy_ticks"] / cpu["clk_tck"]
                run["others_cpu_s"] = max(0.0, others - run["server_cpu_s"] - run["client_cpu_s"])
    return run


def problems(run):
    """What makes a run INVALID, in words; empty when it is valid."""
    found = [f"{count} {kind} error{'s' if count != 1 else ''}"
             for kind, count in run["errors"].items() if count]
    if run["requests"] == 0:
        found.append("no request completed")
    return found


def ms(us):
    return f"{us / 1000:.2f} ms"


def cpu_per_request_us(run):
    if "server_cpu_s" not in run or run["requests"] == 0:
        return None
    return run["server_cpu_s"] * 1e6 / run["requests"]


def describe(run):
    """One run's figures on one line."""
    lat = run["latency_us"]
    text = (f"{run['rps']:>10,.0f} req/s   p50 {ms(lat['p50']):>9}   p99 {ms(lat['p99']):>9}"
            f"   max {ms(lat['max']):>9}")
    per_request = cpu_per_request_us(run)
    if per_request is not None:
        busy = run["server_cpu_s"] / (run["duration_us"] / 1e6) * 100
        text += f"   server cpu {busy:3.0f}% {per_request:4.1f} us/req"
    seconds = run["duration_us"] / 1e6
    if "client_cpu_s" in run and seconds > 0:
        text += f"   wrk cpu {run['client_cpu_s'] / seconds * 100:3.0f}%"
    if "others_cpu_s" in run and seconds > 0:
        text += f"   others {run['others_cpu_s'] / seconds:3.1f} cpu"
    bad = problems(run)
    if bad:
        text += "   INVALID: " + ", ".join(bad)
    return text


def cmd_line(args):
    try:
        run = load(args.file)
    except ParseError as exc:
        print(f"parse failure: {exc}")
        return 4
    print(describe(run))
    return 1 if problems(run) else 0


def median_share(runs, field):
    """Median share of the run's time that `field` (CPU seconds) covers, or None."""
    shares = [r[field] / (r["duration_us"] / 1e6) for r in runs
              if field in r and r["duration_us"] > 0]
    return statistics.median(shares) if shares else None


def verdict(ok, invalid):
    if invalid:
        return "not judged: INVALID"
    return "PASS" if ok else "MISS"


def cmd_summary(args):
    runs = {key: [] for key, _ in LABELS}
    invalid = []
    try:
        for i in range(1, args.rounds + 1):
            for key, name in LABELS:
                run = load(f"{args.dir}/round-{i}-{key}.txt")
                runs[key].append(run)
                if problems(run):
                    invalid.append(f"round {i} {name}: " + ", ".join(problems(run)))
    except ParseError as exc:
        print(f"parse failure: {exc}")
        return 4

    med = {}
    for key, name in LABELS:
        per_request = [c for c in map(cpu_per_request_us, runs[key]) if c is not None]
        med[key] = {
            "rps": statistics.median(r["rps"] for r in runs[key]),
            "p50_us": statistics.median(r["latency_us"]["p50"] for r in runs[key]),
            "p99_us": statistics.median(r["latency_us"]["p99"] for r in runs[key]),
            "bytes_per_response": statistics.median(
                r["bytes"] / r["requests"] for r in runs[key] if r["requests"]) if any(
                r["requests"] for r in runs[key]) else 0,
            "cpu_us_per_request": statistics.median(per_request) if per_request else None,
            "server_cpu_share": median_share(runs[key], "server_cpu_s"),
            "client_cpu_share": median_share(runs[key], "client_cpu_s"),
            "others_cpu": median_share(runs[key], "others_cpu_s"),
        }
    rps_ratio = med["tandem"]["rps"] / med["nginx"]["rps"] if med["nginx"]["rps"] else 0.0
    p99_ratio = (med["tandem"]["p99_us"] / med["nginx"]["p99_us"]
                 if med["nginx"]["p99_us"] else float("inf"))
    rps_ok = rps_ratio >= RPS_RATIO_MIN
    p99_ok = p99_ratio <= P99_RATIO_MAX

    rounds = f"{args.rounds} round{'s' if args.rounds != 1 else ''}"
    print(f"median of {rounds}:")
    for key, name in LABELS:
        m = med[key]
        line = (f"  {name:<14}{m['rps']:>10,.0f} req/s   p50 {ms(m['p50_us']):>9}"
                f"   p99 {ms(m['p99_us']):>9}   {m['bytes_per_response']:.0f} B/response")
        if m["cpu_us_per_request"] is not None:
            line += f"   {m['cpu_us_per_request']:.1f} cpu-us/req"
        print(line)
    print(f"  requests/s  tandem/nginx = {rps_ratio:5.2f}   target >= {RPS_RATIO_MIN:.2f}   "
          f"{verdict(rps_ok, invalid)}")
    print(f"  p99         tandem/nginx = {p99_ratio:5.2f}   target <= {P99_RATIO_MAX:.2f}   "
          f"{verdict(p99_ok, invalid)}")
    cpu_t, cpu_n = med["tandem"]["cpu_us_per_request"], med["nginx"]["cpu_us_per_request"]
    if cpu_t and cpu_n:
        # Not a target: CPU time per request does not depend on whether wrk or the server was
        # the bottleneck, so it explains a requests/s ratio that wrk's own ceiling flattened.
        print(f"  cpu/request tandem/nginx = {cpu_t / cpu_n:5.2f}   (for information)")
    client_bound = [name for key, name in LABELS
                    if (med[key]["client_cpu_share"] or 0) >= 0.9
                    and (med[key]["server_cpu_share"] or 1) < 0.9]
    if client_bound:
        # A closed loop whose one wrk thread is saturated measures wrk's cost per answer, not the
        # server's capacity: say so next to the ratio it distorts.
        print(f"  note: wrk's one thread was the bottleneck for {' and '.join(client_bound)} (wrk cpu"
              " >= 90%, server below 90%); requests/s then measure the client, cpu/request does not")
    busiest = max((med[key]["others_cpu"] or 0) for key, _ in LABELS)
    if busiest >= 0.25:
        print(f"  note: other work kept {busiest:.1f} CPU busy during the median run; the figures"
              " are noisy, re-run on a quieter machine")
    if invalid:
        print("INVALID: errors were counted, so these figures do not compare like with like:")
        for what in invalid:
            print(f"  {what}")

    if args.json:
        report = {
            "meta": dict(kv.split("=", 1) for kv in args.meta),
            "runs": runs,
            "median": med,
            "ratios": {"rps": rps_ratio, "p99": p99_ratio},
            "targets": {"rps_ratio_min": RPS_RATIO_MIN, "p99_ratio_max": P99_RATIO_MAX,
                        "rps_met": rps_ok, "p99_met": p99_ok},
            "invalid": invalid,
        }
        if args.memory:
            try:
                with open(args.memory, encoding="utf-8") as f:
                    report["memory"] = json.load(f)
            except (OSError, ValueError) as exc:
                print(f"parse failure: {args.memory}: {exc}")
                return 4
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
    if invalid:
        return 1
    return 0 if rps_ok and p99_ok else 3


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    line = sub.add_parser("line", help="report one run")
    line.add_argument("file")
    summary = sub.add_parser("summary", help="report the medians and ratios")
    summary.add_argument("--dir", required=True)
    summary.add_argument("--rounds", type=int, required=True)
    summary.add_argument("--memory", help="memory results (JSON) to include in --json")
    summary.add_argument("--meta", action="append", default=[], help="KEY=VALUE for --json")
    summary.add_argument("--json", help="write the whole report here")
    args = parser.parse_args()
    return cmd_line(args) if args.command == "line" else cmd_summary(args)


if __name__ == "__main__":
    sys.exit(main())
