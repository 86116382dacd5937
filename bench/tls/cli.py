"""The TLS benchmark's command line: the options (checked before anything starts), the tools it
needs, and main(), which runs the phases and writes the results."""

import argparse
import os
import pathlib
import shlex
import shutil
import sys
import tempfile


from bench.scaling.cli import command_output, positive, print_banner, require, run_meta
from bench.scaling.measured import (EXIT_BROKEN, EXIT_INTERRUPTED, EXIT_MISSING, EXIT_USAGE,
                                    BenchError)

from . import h2load
from .measured import (CONNECTIONS, NEW_CONNECTIONS, PHASES, PROG, REQUESTS,
                       ROUND_CLIENTS, SMOKE_NEW_CONNECTIONS, SMOKE_REQUESTS, STREAMS)
from .report import print_table, write_results


class Parser(argparse.ArgumentParser):
    """A bad option is one line on stderr, naming --help, and exit status 2."""

    def error(self, message):
        print(f"{PROG}: {message} (bench/tls.sh --help)", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def parse_args(argv):
    parser = Parser(
        prog="bench/tls.sh",
        description="Measures what TLS and HTTP/2 cost HAProxy at tandem's front: GET "
                    "/api/whoami through a local HAProxy + 2 instances with h2load, over "
                    "HTTP/1.1 plain (the reference), HTTPS/1.1 with keep-alive, HTTPS/1.1 with a "
                    "new connection and a full handshake per request, HTTP/2 over TLS, then "
                    "plain HTTP/1.1 with a new connection per request and HTTPS/1.1 with a "
                    "resumed session per request. Per phase: requests, req/s, failed requests, "
                    "the TLS handshakes HAProxy made, and the CPU µs per request of HAProxy, the "
                    "instances and h2load, HAProxy's against the plain reference's. Writes "
                    "run.json and report.md to a results folder named on the last line.",
        epilog="Exit status: 0 every phase ran as meant, 1 something broke or a phase failed "
               "requests or did not negotiate what it measures, 2 bad usage, 77 a required tool "
               "is missing, 130 interrupted. bench/README.md explains every figure.")
    parser.add_argument("--requests", type=positive, metavar="N",
                        help=f"requests of each keep-alive phase (default {REQUESTS:,}; "
                             f"--smoke: {SMOKE_REQUESTS:,})")
    parser.add_argument("--new-connections", type=positive, metavar="N",
                        help="requests of each phase that opens a connection per request "
                             f"(default {NEW_CONNECTIONS:,}; --smoke: {SMOKE_NEW_CONNECTIONS})")
    parser.add_argument("--connections", type=positive, default=CONNECTIONS, metavar="N",
                        help=f"h2load clients of the phases that keep their connections and of "
                             f"the resumed one (default {CONNECTIONS}); the full-handshake "
                             f"phases run rounds of up to {ROUND_CLIENTS}")
    parser.add_argument("--server", metavar="PATH",
                        help="tandem-server binary (default: $TANDEM_SERVER_BIN, else "
                             "build-release/, build/ or build-stack/ of the repository)")
    parser.add_argument("--out", metavar="DIR",
                        help="the results folder (default bench/results/tls/<UTC time>; with "
                             "--smoke bench/results/tls/smoke, replaced each time)")
    parser.add_argument("--smoke", action="store_true",
                        help=f"a quick check that the benchmark works ({SMOKE_REQUESTS:,} and "
                             f"{SMOKE_NEW_CONNECTIONS} requests per phase, no warm-up, a few "
                             "seconds); exit 0 when every phase ran as meant, whatever the "
                             "figures")
    parser.add_argument("--no-install-deps", action="store_true",
                        help="do not call packaging/install-deps.sh bench first")
    args = parser.parse_args(argv)
    if args.requests is None:
        args.requests = SMOKE_REQUESTS if args.smoke else REQUESTS
    if args.new_connections is None:
        args.new_connections = SMOKE_NEW_CONNECTIONS if args.smoke else NEW_CONNECTIONS
    # h2load gives each client requests ÷ clients requests, and refuses fewer requests than
    # clients.
    for name in ("requests", "new_connections"):
        if getattr(args, name) < args.connections:
            parser.error(f"--{name.replace('_', '-')} {getattr(args, name)} is fewer than "
                         f"--connections {args.connections}")
    if args.server and not os.access(args.server, os.X_OK):
        parser.error(f"--server {args.server}: no such executable")
    if args.out and pathlib.Path(args.out).exists() and not pathlib.Path(args.out).is_dir():
        parser.error(f"--out {args.out}: not a directory")
    return args


def server_binary(args):
    from tests.harness import config
    from tests.harness.stack import SERVER_BIN_CANDIDATES

    return config.find_binary("tandem-server", args.server or os.environ.get("TANDEM_SERVER_BIN"),
                              SERVER_BIN_CANDIDATES, BenchError,
                              "pass --server or set TANDEM_SERVER_BIN")


def prerequisites(args):
    require(PROG, ["haproxy", "openssl"], install=not args.no_install_deps)
    try:
        h2load.binary()
    except BenchError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        sys.exit(EXIT_MISSING)


def haproxy_openssl():
    """The OpenSSL HAProxy runs with, as `haproxy -vv` says (e.g. "OpenSSL 3.0.19 27 Jan 2026")."""
    for line in command_output(["haproxy", "-vv"]).splitlines():
        if line.startswith("Running on OpenSSL version :"):
            return line.split(":", 1)[1].strip()
    return "OpenSSL (version unknown)"


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    prerequisites(args)
    # Imported once the prerequisites are known to be there (python3-jinja2, python3-yaml).
    from tests.harness.processes import raise_on_termination
    from tests.harness.stack import StackError

    from .phases import run_phases

    raise_on_termination()
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="tandem-tls-bench-"))
    try:
        server_bin = server_binary(args)
        meta = run_meta(server_bin)
        meta.update({
            "command": shlex.join(["bench/tls.sh", *(sys.argv[1:] if argv is None else argv)]),
            "haproxy_openssl": haproxy_openssl(),
            "h2load_version": command_output([h2load.binary(), "--version"]).split("\n")[0],
            "requests": args.requests, "new_connections": args.new_connections,
            "connections": args.connections, "streams": STREAMS,
            "round_clients": ROUND_CLIENTS, "smoke": args.smoke,
        })
        print_banner("TLS", meta, args.smoke)
        print(f"   tandem-server {meta['server_version']} ({server_bin}), commit {meta['commit']}; "
              f"{meta['haproxy_version']} with {meta['haproxy_openssl']}; "
              f"{meta['h2load_version']}", flush=True)
        print(f"   {len(PHASES)} phases of GET /api/whoami: {args.requests:,} requests each "
              f"with keep-alive, {args.new_connections:,} with a new connection per request",
              flush=True)

        phases, info = run_phases(args, server_bin, workdir)
        meta.update(haproxy_threads=info["haproxy_threads"], loadavg_end=info["loadavg_end"])
        report = {"meta": meta, "phases": phases}
        print_table(phases)
        folder = write_results(args, report)
        invalid = any(p["problems"] for p in phases)
        if invalid:
            print("INVALID: a phase did not run as meant (see above)", file=sys.stderr)
        print(f"results: {folder}", flush=True)
        return EXIT_BROKEN if invalid else 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; everything started was stopped", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BenchError, StackError, OSError, ValueError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return EXIT_BROKEN
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
