"""bench/deployed.sh as a user drives it: bad options are refused before a guest is booted, and a
smoke run deploys the package into a systemd guest, measures every phase through the processes it
names, and writes its report (its figures are not judged: a smoke run's second per phase is
noise)."""

import json
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
DEPLOYED = REPO / "bench" / "deployed.sh"
PHASES = ["cheap-direct", "cheap-front-1", "cheap-front-2", "cpu-front-1", "cpu-front-2"]


def deployed(*argv, timeout=30):
    return subprocess.run([str(DEPLOYED), "--no-install-deps", *argv], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("argv, message", [
    (["--set", "tandem_lb_nosuch=1"],
     "want VARIABLE=VALUE with a variable of haproxy/defaults.yml"),
    (["--set", "tandem_lb_port=8080"], "the benchmark's deployment sets tandem_lb_port itself"),
    (["--set", "tandem_app_access_log=[all"], "the value is not YAML"),
    (["--duration", "0"], "wants a positive whole number"),
    (["--deb", "/nonexistent/tandem.deb"], "no such file"),
])
def test_bad_options_are_refused_before_anything_starts(argv, message, tmp_path):
    result = deployed(*argv, "--results-dir", str(tmp_path))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
    assert not list(tmp_path.iterdir()), "a refused run wrote results"


def test_smoke_run_measures_every_process_on_the_path(tmp_path):
    from tests.system.deployment import package_path

    result = deployed("--smoke", "--deb", str(package_path()), "--results-dir", str(tmp_path),
                      "--set", "tandem_lb_log_requests=all", timeout=540)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-3000:]
    last = result.stdout.strip().splitlines()[-1]
    assert last == f"results: {tmp_path / 'smoke'}", last
    report = json.loads((tmp_path / "smoke" / "run.json").read_text(encoding="utf-8"))
    phases = {p["key"]: p for p in report["phases"]}
    assert list(phases) == PHASES
    assert report["meta"]["deploy_vars"]["tandem_lb_log_requests"] == "all"
    for key, phase in phases.items():
        assert phase["requests"] > 0 and not phase["problems"], phase
        cpu = phase["cpu_s"]
        if key == "cheap-direct":
            # Straight to app-1: HAProxy only runs its health checks meanwhile.
            assert cpu["app-1"] > 20 * cpu["haproxy"], cpu
        else:
            # Through :80 HAProxy works for every request, and with every request logged the
            # journal receives a line for each: both show on the path.
            assert cpu["haproxy"] > 0 and cpu["journald"] > 0, (key, cpu)
    # With app-2 in maintenance, app-1 served all; back in rotation, both served.
    alone = phases["cheap-front-1"]["cpu_s"]
    assert alone["app-2"] * 10 < alone["app-1"], alone
    assert phases["cpu-front-2"]["cpu_s"]["app-2"] > 0.2 * phases["cpu-front-2"]["cpu_s"]["app-1"]
    figures = report["figures"]
    assert set(figures["cheap"]) == {"cheap-front-1", "cheap-front-2"}
    assert {"rps_ratio", "p99_ratio"} <= set(figures["cpu_bound"])
    assert set(figures["bottlenecks"]) == set(PHASES)
    markdown = (tmp_path / "smoke" / "report.md").read_text(encoding="utf-8")
    assert "`tandem_lb_log_requests=all`" in markdown and "front (HAProxy + journald)" in markdown
    assert (tmp_path / "smoke" / "chart.png").read_bytes().startswith(b"\x89PNG")
