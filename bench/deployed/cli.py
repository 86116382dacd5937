"""The deployed benchmark's command line: the options (--set checked against the roles' variables
before anything starts), the tools it needs, the package it deploys, and main()."""

import argparse
import datetime
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from tests.harness import procstat
from tests.harness.wrk import WrkError

from bench.scaling.cli import (command_output, conclude, git_commit, non_negative,
                               positive, require)
from bench.scaling.measured import (EXIT_BROKEN, EXIT_INTERRUPTED, HERE,
                                    PER_SOURCE_OUT_OF_REACH, REPO, BenchError)

PROG = "deployed"
APP_DEFAULTS = REPO / "ansible" / "roles" / "tandem_app" / "defaults" / "main.yml"
# Fixed by the local inventory's deployment the benchmark measures (ports, the package).
OWN = {"tandem_lb_port", "tandem_app_package", "tandem_app_instances"}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="bench/deployed.sh",
        description="Measures tandem as ./up deploys it (a systemd guest, Ansible's deployment, "
                    "Debian's HAProxy and journald): GET /api/whoami direct to app-1 and through "
                    ":80 with one and two instances, and a CPU-bound route (about 1 ms per "
                    "request) through :80 with one and two: requests/s, latency, errors, and the "
                    "CPU µs per request of HAProxy, journald, each instance, the rest of the guest "
                    "and wrk, with the ratios to the direct run and each phase's bottleneck. "
                    "Writes run.json, report.md and chart.png to a results folder named on the "
                    "last line.",
        epilog="Exit status: 0 every phase ran without errors (targets may be missed), 1 something "
               "broke or errors were counted, 2 bad usage, 77 a required tool is missing, "
               "130 interrupted. The guest takes ports 80, 443, 2222, 3001, 3002, 8404, 9090, "
               "9093, 9100 and 9115 of this machine, as ./up does. bench/README.md explains every "
               "figure.")
    parser.add_argument("--deb", metavar="PATH",
                        help="the package to deploy; skips the build (default: build it as ./up "
                             "does, into build-release/)")
    parser.add_argument("--duration", type=positive, metavar="SECONDS",
                        help="length of each measured phase (default 10; --smoke: 1)")
    parser.add_argument("--warmup", type=non_negative, metavar="SECONDS",
                        help="unmeasured wrk run before each phase (default 1; --smoke: 0)")
    parser.add_argument("--connections", type=positive, default=16, metavar="N",
                        help="wrk connections, the same in every phase (default 16)")
    parser.add_argument("--set", action="append", default=[], type=setting,
                        metavar="VARIABLE=VALUE",
                        help="deploy with this variable of haproxy/defaults.yml or of the "
                             "tandem_app role changed (repeatable), e.g. --set "
                             "tandem_lb_log_requests=all --set tandem_app_access_log=all")
    parser.add_argument("--results-dir", default=str(HERE / "results" / "deployed"),
                        metavar="DIR", help="where the results folder is made (default "
                                            "bench/results/deployed)")
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
    if args.deb and not os.path.isfile(args.deb):
        parser.error(f"--deb {args.deb}: no such file")
    return args


def role_defaults():
    import yaml

    from tests.harness import config

    with open(APP_DEFAULTS, encoding="utf-8") as stream:
        return {**config.load_defaults(), **yaml.safe_load(stream)}


def setting(text):
    """NAME=VALUE of --set: a variable of haproxy/defaults.yml or of the tandem_app role, the value
    read as YAML."""
    import yaml

    name, sep, value = text.partition("=")
    defaults = role_defaults()
    if not sep or name not in defaults:
        raise argparse.ArgumentTypeError(
            f"{text!r}: want VARIABLE=VALUE with a variable of haproxy/defaults.yml or "
            f"ansible/roles/tandem_app/defaults/main.yml")
    if name in OWN:
        raise argparse.ArgumentTypeError(f"{text!r}: the benchmark's deployment sets {name} "
                                         "itself (the local inventory's)")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError as error:
        raise argparse.ArgumentTypeError(f"{text!r}: the value is not YAML: {error}") from None
    return name, parsed


def prerequisites(args):
    tools = ["wrk", "gnuplot", "ansible-playbook", "systemd-nspawn", "nsenter", "ssh"]
    require(PROG, tools + ([] if args.deb else ["cmake", "cpack"]),
            install=not args.no_install_deps)


def build_package(workdir):
    """The Release package, built as ./up builds it."""
    build = REPO / "build-release"
    print(f"== building the package (Release) in {build} ...", flush=True)
    log = workdir / "build.log"
    with open(log, "w", encoding="utf-8") as out:
        for argv in (["cmake", "-S", str(REPO), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                      "-DTANDEM_BUILD_TESTS=OFF"],
                     ["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2),
                      "--target", "deb"]):
            if subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode:
                print(log.read_text(encoding="utf-8", errors="replace")[-4000:], file=sys.stderr)
                raise BenchError("the Release package build failed (output above)")
    cache = (build / "CMakeCache.txt").read_text(encoding="utf-8")
    version = next(line.split("=", 1)[1] for line in cache.splitlines()
                   if line.startswith("CMAKE_PROJECT_VERSION:STATIC="))
    arch = command_output(["dpkg", "--print-architecture"])
    deb = build / f"tandem_{version}_{arch}.deb"
    if not deb.is_file():
        raise BenchError(f"the build wrote no {deb}")
    return deb


def main(argv=None):
    args = parse_args(argv)
    prerequisites(args)
    from tests.harness.processes import raise_on_termination
    from tests.harness.systemd_container import ContainerError

    from .guest import Deployment
    from .phases import run_phases
    from .report import figures, print_summary, write_results

    raise_on_termination()
    settings = dict(args.set)
    balance = {**role_defaults(), **settings}["tandem_lb_balance"]
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-deployed-"))
    try:
        deb = pathlib.Path(args.deb).resolve() if args.deb else build_package(workdir)
        machine = procstat.machine_description()
        busy = procstat.busy_cpus_now()
        meta = {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine, "loadavg_start": procstat.loadavg(),
            "busy_cpus_before": round(busy, 3), "package": deb.name, "commit": git_commit(),
            "deploy_vars": {**PER_SOURCE_OUT_OF_REACH, **settings}, "balance": balance,
            "wrk_version": " ".join(command_output(["wrk", "-v"]).split()[:2]),
            "connections": args.connections, "duration": args.duration, "warmup": args.warmup,
            "smoke": args.smoke,
        }
        print(f"== tandem deployed benchmark{' (smoke)' if args.smoke else ''}: {meta['date']} "
              f"on {machine['host']}, {machine['cpus']} CPUs, {busy:.2f} CPUs busy before the "
              "start", flush=True)
        with Deployment(deb, settings) as deployment:
            meta["haproxy_version"] = deployment.haproxy_version()
            meta["haproxy_threads"] = deployment.haproxy_threads()
            print(f"   {meta['haproxy_version']}, {meta['haproxy_threads']} worker threads, "
                  f"balance {balance}; deployed with "
                  + ", ".join(f"{k}={v}" for k, v in meta["deploy_vars"].items()), flush=True)
            phases, meta["calibration"] = run_phases(args, deployment, workdir)
        meta["loadavg_end"] = procstat.loadavg()
        report = {"meta": meta, "phases": phases, "figures": figures(phases)}
        print_summary(report)
        folder = write_results(args, report, workdir)
        return conclude(phases, folder)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; the guest is powered off and removed", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BenchError, ContainerError, WrkError, ValueError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_BROKEN
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
