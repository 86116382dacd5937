"""wrk, started and read in one place: one run bounded in time, its own CPU time, and the JSON
lines that tandem's Lua scripts print at done().

    result = wrk.run("http://127.0.0.1:8080", SCRIPT, connections=16, seconds=10, latency=True,
                     script_args=["410000"], log_path=workdir / "wrk.txt")
    summary = result.line("WRK-JSON")        # requests, errors by kind, latency_us percentiles

tandem's scripts print one line `<PREFIX> {json}` each: bench/wrk-json.lua `WRK-JSON` (requests,
duration, bytes, errors by kind: connect, read, write, status, timeout; latency percentiles in
µs; wrk's own CPU ticks), bench/wrk-session.lua also `WRK-SESSION` (sessions, sticky misses),
tests/harness/wrk_flood.lua `WRK-FLOOD` (statuses, errors, duration). Reading numbers from these
lines is sturdier than reading wrk's own text, whose units change with magnitude.

wrk runs as a tracked child (tests/harness/processes.py: its own process group, killed with the
harness); a run that does not end by its duration plus OVERRUN seconds is stopped and is an error.
Standard library only.

From a shell (bench/server-vs-nginx.sh), one measured run whose output goes to --out, followed by
a line `SERVER-CPU {"ticks":T,"machine_busy_ticks":B,"clk_tck":HZ}`: the CPU time the --watch
processes used during the run, and the busy time of the whole machine meanwhile:

    python3 tests/harness/wrk.py --out FILE --script S.lua --threads 1 --connections 64 \
        --seconds 5 [--latency] [--cpu 1] [--watch PID]... URL
"""

import argparse
import json
import os
import pathlib
import shutil
import sys
import tempfile
from dataclasses import dataclass

if __package__ in (None, ""):
    sys.dont_write_bytecode = True
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

from tests.harness import procstat  # noqa: E402
from tests.harness.processes import Process, raise_on_termination  # noqa: E402

# Seconds a run may take beyond its duration (connecting, the done() hook, a slow machine).
OVERRUN = 30


class WrkError(RuntimeError):
    """wrk is missing, failed, ran over its time, or did not print what its script prints."""


def json_lines(output):
    """{prefix: parsed JSON} of every `<PREFIX> {...}` line in wrk's output (the last one wins)."""
    found = {}
    for text in output.splitlines():
        prefix, _, rest = text.partition(" ")
        if prefix.isupper() and rest.startswith("{"):
            try:
                found[prefix] = json.loads(rest)
            except ValueError:
                continue
    return found


@dataclass
class Result:
    argv: list
    returncode: int
    output: str
    cpu_seconds: float  # wrk's own CPU time, all its threads, the whole run

    def line(self, prefix, required=True):
        """The JSON of the script's `<prefix> {...}` line; None when absent and not required."""
        found = json_lines(self.output).get(prefix)
        if found is None and required:
            raise WrkError(f"wrk printed no {prefix} line:\n" + self.output[-2000:])
        return found


def command(url, script, connections, seconds, threads=1, latency=False, socket_timeout=None,
            script_args=(), cpu=None):
    """wrk's argv: `threads` threads, `connections` connections for `seconds`, the Lua `script`
    with `script_args` after `--`; pinned to CPU `cpu` (taskset) when given."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk is not installed (packaging/install-deps.sh test)")
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s"]
    if socket_timeout is not None:
        argv += ["--timeout", f"{socket_timeout}s"]
    if latency:
        argv.append("--latency")
    argv += ["-s", str(script), url]
    if script_args:
        argv += ["--"] + [str(arg) for arg in script_args]
    return (["taskset", "-c", str(cpu)] if cpu is not None else []) + argv


def run(url, script, connections, seconds, log_path=None, **options):
    """Runs wrk (see command() for the options) until it ends, at most seconds + OVERRUN; returns
    a Result. Its output goes to log_path (a temporary file, removed after, when None). Raises
    WrkError when wrk is missing, runs over, or exits with another status than 0."""
    argv = command(url, script, connections, seconds, **options)
    own_log = log_path is None
    if own_log:
        handle, name = tempfile.mkstemp(prefix="tandem-wrk-", suffix=".txt")
        os.close(handle)
        log_path = pathlib.Path(name)
    else:
        pathlib.Path(log_path).write_bytes(b"")  # This run's output only.
    try:
        process = Process("wrk", argv, log_path)
        try:
            if not process.wait(seconds + OVERRUN):
                raise WrkError(f"wrk did not finish within {seconds + OVERRUN} s: "
                               f"{' '.join(argv)}")
            # Exited but not yet reaped: /proc still has its final CPU time.
            ticks = procstat.cpu_ticks(process.pid)
        finally:
            code = process.stop(grace=2.0)
        output = pathlib.Path(log_path).read_text(encoding="utf-8", errors="replace")
    finally:
        if own_log:
            pathlib.Path(log_path).unlink(missing_ok=True)
    if code != 0:
        raise WrkError(f"wrk exited with {code}: {' '.join(argv)}\n{output[-2000:]}")
    return Result(argv, code, output, (ticks or 0) / procstat.CLK_TCK)


def measured_run(args):
    """The shell's run: wrk's output and the SERVER-CPU line in args.out; 1 when wrk failed
    (its output then on stderr)."""
    before = procstat.total_cpu_ticks(args.watch)
    busy_before = procstat.machine_busy_ticks()
    try:
        result = run(args.url, args.script, args.connections, args.seconds, log_path=args.out,
                     threads=args.threads, latency=args.latency, cpu=args.cpu)
    except WrkError as error:
        # The first line says what went wrong; the caller shows wrk's output from args.out.
        print(str(error).splitlines()[0], file=sys.stderr)
        return 1
    after = procstat.total_cpu_ticks(args.watch)
    busy_after = procstat.machine_busy_ticks()
    server_cpu = {"ticks": after - before, "machine_busy_ticks": busy_after - busy_before,
                  "clk_tck": procstat.CLK_TCK}
    with open(args.out, "a", encoding="utf-8") as out:
        out.write("SERVER-CPU " + json.dumps(server_cpu, separators=(",", ":")) + "\n")
    return 0 if result.returncode == 0 else 1


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="tests/harness/wrk.py",
        description="One wrk run with the CPU time of the watched processes appended to its "
                    "output as a SERVER-CPU line.")
    parser.add_argument("--out", required=True, help="file for wrk's output and the line")
    parser.add_argument("--script", required=True, help="the wrk Lua script")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--connections", type=int, required=True)
    parser.add_argument("--seconds", type=int, required=True)
    parser.add_argument("--latency", action="store_true", help="wrk --latency")
    parser.add_argument("--cpu", type=int, help="pin wrk to this CPU (taskset)")
    parser.add_argument("--watch", type=int, action="append", default=[], metavar="PID",
                        help="a process whose CPU time counts as the server's (repeatable)")
    parser.add_argument("url")
    args = parser.parse_args(argv)
    raise_on_termination()
    try:
        return measured_run(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
