"""bench/scaling.sh as a user drives it: bad options are refused with a clear message before
anything starts, and --set measures the configuration asked for (its figures are not judged)."""

import json
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCALING = REPO / "bench" / "scaling.sh"


def scaling(*argv, timeout=30):
    return subprocess.run([str(SCALING), "--no-install-deps", *argv], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("argv, message", [
    (["--set", "tandem_lb_nosuch=1"], "want VARIABLE=VALUE with a variable of haproxy/defaults.yml"),
    (["--set", "tandem_lb_nbthread"], "want VARIABLE=VALUE"),
    (["--set", "tandem_lb_port=80"], "the local stack sets tandem_lb_port itself"),
    (["--set", "tandem_lb_balance=source"], "the benchmark compares leastconn and roundrobin"),
    (["--set", "tandem_lb_nbthread=[1"], "the value is not YAML"),
    (["--set", "tandem_lb_nbthread=two"], "wants a whole number of threads"),
    (["--routes", "whoami,nosuch"], "--routes takes whoami, load-test and session"),
    (["--duration", "0"], "wants a positive whole number"),
    (["--server", "/nonexistent/tandem-server"], "no such executable"),
])
def test_bad_options_are_refused_before_anything_starts(argv, message, tmp_path):
    result = scaling(*argv, "--results-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
    assert not list(tmp_path.iterdir()), "a refused run wrote results"


def test_set_measures_the_configuration_asked_for(tmp_path):
    server = os.environ.get("TANDEM_SERVER_BIN")
    assert server, "TANDEM_SERVER_BIN must name the tandem-server binary (CTest sets it)"
    result = scaling("--smoke", "--server", server, "--routes", "load-test",
                     "--set", "tandem_lb_balance=leastconn", "--set", "tandem_lb_nbthread=1",
                     "--results-dir", str(tmp_path), timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"results: {tmp_path / 'smoke'}", last
    report = json.loads((tmp_path / "smoke" / "run.json").read_text(encoding="utf-8"))
    meta = report["meta"]
    # leastconn measured as the deployed balance, roundrobin as the alternative.
    assert meta["balance"] == {"deployed": "leastconn", "alternative": "roundrobin"}
    assert meta["haproxy_set"] == {"tandem_lb_balance": "leastconn", "tandem_lb_nbthread": 1}
    # Both HAProxies really ran one worker thread.
    assert meta["haproxy_threads"] == {"haproxy": [1], "haproxy-alt": [1]}, meta
    labels = [p["label"] for p in report["phases"]]
    assert labels == ["direct to app-1", "HAProxy + 1 instance", "HAProxy + 2 instances",
                      "HAProxy + 2 instances, roundrobin"], labels
    assert set(report["figures"]["cpu_bound"]) >= {"leastconn", "roundrobin"}
    markdown = (tmp_path / "smoke" / "report.md").read_text(encoding="utf-8")
    assert "tandem_lb_balance=leastconn, tandem_lb_nbthread=1" in markdown
    assert "nbthread 1" in markdown
    assert (tmp_path / "smoke" / "chart.png").read_bytes().startswith(b"\x89PNG")
