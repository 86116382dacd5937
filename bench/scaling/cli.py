"""The scaling benchmark's command line: the options (--set checked against haproxy/defaults.yml
before anything starts), the tools it needs, the Release build, and main(), which runs the phases
and writes the results."""

import argparse
import datetime
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

from tests.harness import procstat
from tests.harness.wrk import WrkError

from .figures import figures
from .measured import (BALANCES, COST_TARGET_MS, EXIT_BROKEN, EXIT_INTERRUPTED, EXIT_MISSING,
                       OTHERS_WARN_CPUS, P99_RATIO_MAX, PER_SOURCE_OUT_OF_REACH, PROG, REPO,
                       ROUTES, RPS_RATIO_MIN, HERE, BenchError, balances)
from .report import nbthread_text, print_summary, write_results


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
    require(PROG, ["wrk", "haproxy", "gnuplot"] + ([] if args.server else ["cmake"]),
            install=not args.no_install_deps)


def require(prog, tools, install):
    """Installs the benchmarks' packages (install: packaging/install-deps.sh bench), then exits
    EXIT_MISSING naming what is still missing of tools and the harness's python modules."""
    if install:
        if subprocess.run([str(REPO / "packaging" / "install-deps.sh"), "bench"],
                          stdin=subprocess.DEVNULL, stdout=sys.stderr, check=False).returncode:
            print(f"{prog}: packaging/install-deps.sh bench failed; checking for the tools anyway",
                  file=sys.stderr)
    missing = [tool for tool in tools if shutil.which(tool) is None]
    for module, package in (("jinja2", "python3-jinja2"), ("yaml", "python3-yaml")):
        try:
            __import__(module)
        except ImportError:
            missing.append(f"{package} (for {sys.executable})")
    if missing:
        print(f"{prog}: missing: {', '.join(missing)} (packaging/install-deps.sh bench installs "
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


def conclude(phases, folder):
    """The end of a run whose results are written: INVALID when a phase counted errors, the
    results folder on the last line, and the exit status."""
    invalid = any(p["problems"] for p in phases)
    if invalid:
        print("INVALID: errors were counted (see above)", file=sys.stderr)
    print(f"results: {folder}", flush=True)
    return EXIT_BROKEN if invalid else 0


def run_meta(server_bin):
    """What every benchmark's report says of its run: the time, the machine and how busy it was,
    the tandem-server binary and its version, the commit, HAProxy's version."""
    busy = procstat.busy_cpus_now()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": procstat.machine_description(), "loadavg_start": procstat.loadavg(),
        "busy_cpus_before": round(busy, 3),
        "server": server_bin,
        "server_version": command_output([server_bin, "--version"]).split("\n")[0]
                          .removeprefix("tandem-server "),
        "commit": git_commit(),
        "haproxy_version": command_output(["haproxy", "-v"]).split("\n")[0].split(" - ")[0],
    }


def print_banner(name, meta, smoke):
    """The first line of a benchmark's output, and a warning when the machine is busy."""
    machine, busy = meta["machine"], meta["busy_cpus_before"]
    print(f"== tandem {name} benchmark{' (smoke)' if smoke else ''}: {meta['date']} on "
          f"{machine['host']}, {machine['cpus']} CPUs ({machine['cpu_model']}), load average "
          f"{meta['loadavg_start']}, {busy:.2f} CPUs busy just now", flush=True)
    if busy >= OTHERS_WARN_CPUS:
        print(f"   warning: the machine is busy ({busy:.2f} CPUs before the start); the "
              "figures will be noisy", flush=True)


def git_commit():
    commit = command_output(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{4,40}", commit):
        return "unknown"
    dirty = command_output(["git", "-C", str(REPO), "status", "--porcelain",
                            "--untracked-files=no"])
    return commit + ("-dirty" if dirty else "")


def command_output(argv):
    try:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip()


def main(argv=None):
    args = parse_args(argv)
    prerequisites(args)
    # Imported once the prerequisites are known to be there (python3-jinja2, python3-yaml).
    from tests.harness import config
    from tests.harness.processes import raise_on_termination
    from tests.harness.stack import StackError

    from .phases import run_phases

    raise_on_termination()
    settings = {**config.load_defaults(), **dict(args.set)}
    args.balance = balances(settings)
    nbthread = int(settings["tandem_lb_nbthread"] or 0)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-scaling-"))
    try:
        server_bin = os.path.abspath(args.server) if args.server else build_release(workdir)
        meta = run_meta(server_bin)
        meta.update({
            "haproxy_nbthread": nbthread,
            "haproxy_set": dict(args.set),
            "balance": args.balance,
            "wrk_version": " ".join(command_output(["wrk", "-v"]).split()[:2]),
            "connections": args.connections, "duration": args.duration, "warmup": args.warmup,
            "routes": args.routes, "smoke": args.smoke,
        })
        print_banner("scaling", meta, args.smoke)
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
        return conclude(phases, folder)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BenchError, StackError, WrkError, ValueError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_BROKEN
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
