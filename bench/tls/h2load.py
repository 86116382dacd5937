"""h2load, started and read in one place: one run as a tracked child of the harness (its own
process group, stopped with the harness), its own CPU time from /proc, and the figures of its
summary.

h2load prints, per run, lines such as

    TLS Protocol: TLSv1.3
    Cipher: TLS_AES_128_GCM_SHA256
    Server Temp Key: X25519 253 bits
    Application protocol: h2
    finished in 672.68ms, 29731.91 req/s, 9.44MB/s
    requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout
    status codes: 2000 2xx, 0 3xx, 0 4xx, 0 5xx
    time for request:       51us       650us       167us        83us    90.50%

("succeeded" counts the answers below 400; "failed" the rest and the requests that got no answer,
which "errored" counts apart). The TLS lines are absent over plain HTTP, and the protocol line
reads "No protocol negotiated" when ALPN picked none.
"""

import pathlib
import re
import shutil
from dataclasses import dataclass, field

from tests.harness import procstat
from tests.harness.processes import Process

from bench.scaling.measured import BenchError

# Seconds a run may take at most: each phase is meant to last seconds; one that hangs is broken.
TIMEOUT = 100
PACKAGE = "nghttp2-client"

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def binary():
    """The path of h2load; BenchError naming the package when it is not installed."""
    found = shutil.which("h2load")
    if found is None:
        raise BenchError(f"h2load is missing: install Debian's {PACKAGE} "
                         "(packaging/install-deps.sh test)")
    return found


def command(url, requests, clients, h1=False, streams=1, headers=()):
    """h2load's argv: `requests` requests over `clients` clients (one thread); --h1 offers only
    HTTP/1.1 (over TLS: ALPN http/1.1); `streams` in flight per connection (HTTP/2 streams, or
    pipelined HTTP/1.1 requests); `headers` as "Name: value"."""
    argv = [binary(), "-n", str(requests), "-c", str(clients), "-t", "1", "-m", str(streams)]
    if h1:
        argv.append("--h1")
    for header in headers:
        argv += ["-H", header]
    return argv + [url]


@dataclass
class Result:
    argv: list
    output: str
    cpu_seconds: float  # h2load's own CPU time (user + system), the whole run
    seconds: float      # h2load's own "finished in": from its start of the load to the last answer
    requests: dict      # total, started, done, succeeded, failed, errored, timeout
    statuses: dict      # 2xx, 3xx, 4xx, 5xx
    protocol: str       # "Application protocol", or "" when not printed
    tls: dict = field(default_factory=dict)  # protocol, cipher, temp_key (HTTPS only)
    request_mean_us: float = None  # "time for request" mean


def duration(text):
    """h2load's durations ("672.68ms", "1.12s", "51us") in seconds."""
    match = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"not a duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(argv, output, cpu_seconds):
    """A Result from h2load's output; BenchError when its summary is not there."""
    finished = re.search(r"^finished in ([0-9.]+(?:us|ms|s|m|h)),", output, re.M)
    counts = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored, (\d+) timeout", output, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", output, re.M)
    if not (finished and counts and codes):
        raise BenchError(f"h2load printed no summary: {' '.join(argv)}\n{output[-2000:]}")
    names = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    protocol = re.search(r"^Application protocol: (\S+)", output, re.M)
    negotiated_none = re.search(r"^No protocol negotiated", output, re.M)
    tls = {}
    for key, label in (("protocol", "TLS Protocol"), ("cipher", "Cipher"),
                       ("temp_key", "Server Temp Key")):
        found = re.search(rf"^{label}: (.+)$", output, re.M)
        if found:
            tls[key] = found.group(1).strip()
    timing = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", output, re.M)
    return Result(
        argv=argv, output=output, cpu_seconds=cpu_seconds,
        seconds=duration(finished.group(1)),
        requests=dict(zip(names, map(int, counts.groups()))),
        statuses=dict(zip(("2xx", "3xx", "4xx", "5xx"), map(int, codes.groups()))),
        protocol=protocol.group(1) if protocol else ("none" if negotiated_none else ""),
        tls=tls, request_mean_us=duration(timing.group(3)) * 1e6 if timing else None)


def run(argv, log_path):
    """Runs h2load until it ends (at most TIMEOUT seconds) with its output in log_path; returns
    its Result. BenchError when it runs over, fails, or prints no summary."""
    pathlib.Path(log_path).write_bytes(b"")  # This run's output only.
    process = Process("h2load", argv, log_path)
    try:
        if not process.wait(TIMEOUT):
            raise BenchError(f"h2load did not finish within {TIMEOUT} s: {' '.join(argv)}")
        # Exited but not reaped yet: /proc still has its final CPU time.
        ticks = procstat.cpu_ticks(process.pid)
    finally:
        code = process.stop(grace=2.0)
    output = pathlib.Path(log_path).read_text(encoding="utf-8", errors="replace")
    if code != 0:
        raise BenchError(f"h2load exited with {code}: {' '.join(argv)}\n{output[-2000:]}")
    return parse(argv, output, (ticks or 0) / procstat.CLK_TCK)


def combine(results):
    """One Result for several runs of one phase (the rounds of a full-handshake phase): counts,
    CPU time and h2load's own times added up, the protocols and TLS lines of the first run, and
    every protocol seen, comma-separated when they differ."""
    first = results[0]
    protocols = sorted({r.protocol for r in results})
    means = [(r.request_mean_us, r.requests["done"]) for r in results
             if r.request_mean_us is not None]
    done = sum(n for _, n in means)
    return Result(
        argv=first.argv, output=first.output,
        cpu_seconds=sum(r.cpu_seconds for r in results),
        seconds=sum(r.seconds for r in results),
        requests={k: sum(r.requests[k] for r in results) for k in first.requests},
        statuses={k: sum(r.statuses[k] for r in results) for k in first.statuses},
        protocol=",".join(protocols), tls=first.tls,
        request_mean_us=sum(m * n for m, n in means) / done if done else None)
