"""bench/tls.sh as a user drives it: bad options are refused with one line and exit 2 before
anything starts, a missing h2load is named with its package, and a smoke run measures every phase
through the protocol it names (its figures are not judged: a few hundred requests per phase are
noise)."""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TLS = REPO / "bench" / "tls.sh"
PHASES = ["h1", "h1-tls", "h1-tls-new", "h2-tls", "h1-new", "h1-tls-resumed"]


def tls(*argv, timeout=30, env=None):
    return subprocess.run([str(TLS), "--no-install-deps", *argv], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, check=False, env=env)


@pytest.mark.parametrize("argv, message", [
    (["--requests", "0"], "--requests: wants a positive whole number"),
    (["--connections", "many"], "--connections: wants a positive whole number"),
    (["--requests", "8", "--connections", "16"], "--requests 8 is fewer than --connections 16"),
    (["--new-connections", "4"], "--new-connections 4 is fewer than --connections 16"),
    (["--server", "/nonexistent/tandem-server"], "no such executable"),
    (["--nosuch"], "unrecognized arguments: --nosuch"),
])
def test_bad_options_are_refused_in_one_line(argv, message, tmp_path):
    result = tls(*argv, "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert result.stderr.startswith("tls: ") and "--help" in result.stderr, result.stderr
    assert not (tmp_path / "out").exists(), "a refused run wrote results"


def test_a_missing_h2load_is_named_with_its_package(tmp_path):
    # A PATH with what the wrapper and the checks before h2load's need, and no h2load.
    for tool in ("bash", "dirname", "haproxy", "openssl"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    result = tls("--smoke", "--out", str(tmp_path / "out"),
                 env={**os.environ, "PATH": str(tmp_path)})
    assert result.returncode == 77, result.stdout + result.stderr
    assert "h2load is missing" in result.stderr and "nghttp2-client" in result.stderr, \
        result.stderr
    assert not (tmp_path / "out").exists()


def test_smoke_run_measures_every_phase_through_the_protocol_it_names(tmp_path):
    out = tmp_path / "out"
    result = tls("--smoke", "--out", str(out), timeout=150)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[-1] == f"results: {out}", lines[-1]
    for number in range(1, len(PHASES) + 1):
        assert any(line.startswith(f"[{number}/{len(PHASES)}] ") for line in lines), number
    report = json.loads((out / "run.json").read_text(encoding="utf-8"))
    phases = {p["key"]: p for p in report["phases"]}
    assert list(phases) == PHASES
    meta = report["meta"]
    for key, phase in phases.items():
        assert phase["requests"] > 0 and phase["failed"] == 0, (key, phase["h2load_requests"])
        assert not phase["problems"], (key, phase["problems"])
        assert phase["cpu_us_per_request"]["haproxy"] > 0, (key, phase["cpu_s"])
        assert phase["haproxy_ratio"] is not None, key
    assert phases["h1"]["haproxy_ratio"] == 1.0
    # ALPN, as h2load reported it ("Application protocol: ..."): h2 where HTTP/2 is measured,
    # http/1.1 on every other phase, TLS or not.
    assert phases["h2-tls"]["protocol"] == "h2"
    for key in ("h1", "h1-tls", "h1-tls-new", "h1-new", "h1-tls-resumed"):
        assert phases[key]["protocol"] == "http/1.1", (key, phases[key]["protocol"])
    for key in ("h1-tls", "h1-tls-new", "h2-tls", "h1-tls-resumed"):
        assert phases[key]["tls"].get("protocol", "").startswith("TLSv1."), phases[key]["tls"]
    assert not phases["h1"]["tls"] and not phases["h1-new"]["tls"]
    # HAProxy's own counters: the keep-alive phases held their connections; the full-handshake
    # phase made one full handshake per request, the resumed one resumed after each client's
    # first connection.
    for key in ("h1", "h1-tls", "h2-tls"):
        assert phases[key]["haproxy_counted"]["connections"] == meta["connections"], key
    full = phases["h1-tls-new"]["haproxy_counted"]
    assert full["tls_handshakes"] == meta["new_connections"] and full["resumed"] == 0, full
    resumed = phases["h1-tls-resumed"]["haproxy_counted"]
    assert resumed["resumed"] >= meta["new_connections"] - meta["connections"], resumed
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "SMOKE RUN" in markdown and "HTTP/2 over TLS" in markdown
