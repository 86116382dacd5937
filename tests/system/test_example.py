"""The library boundary, proven the way an outside developer would meet it: in a systemd guest,
tandem and tandem-dev are installed from their .debs, examples/notes (an application of its own:
routes, state, flags) is built against the installed package alone and passes its own tests, then
runs under tandem's own unit (a drop-in names its binary) behind HAProxy rendered from the one
template, and is drained by `systemctl stop` under load like tandem-server.
"""

import pathlib
import time

from tests.harness.load import PacedLoad, Request, parallel
from tests.system.deployment import INSTANCES, fmt, package_path

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "notes"  # The guest's root is an overlay of the host's: same path.
BUILD = "/var/tmp/notes-build"
DROP_IN = "/etc/systemd/system/tandem@.service.d/application.conf"
RATE = 100
DRAIN_AT = 2.0  # seconds into the load
LOAD_SECONDS = 10


def test_the_example_builds_from_the_package_runs_under_the_unit_and_drains(system, report):
    guest = system.guest
    dev = package_path("tandem-dev")
    guest.write("/var/tmp/tandem-dev.deb", dev.read_bytes())
    guest.run(["dpkg", "-i", "/var/tmp/tandem-dev.deb"], timeout=300)
    # The headers the application may see are the installed ones, nothing of tandem's tree.
    installed = guest.run(["dpkg", "-L", "tandem-dev"]).stdout.split()
    assert "/usr/include/tandem/application.hpp" in installed
    guest.run(["cmake", "-S", str(EXAMPLE), "-B", BUILD], timeout=300)
    # Where find_package(tandem) found the library: the package's CMake files.
    found = guest.run(["sed", "-n", "s/^tandem_DIR:PATH=//p", f"{BUILD}/CMakeCache.txt"]).stdout.strip()
    guest.run(["cmake", "--build", BUILD, "-j", "2"], timeout=600)
    own_tests = guest.run(["ctest", "--test-dir", BUILD, "--output-on-failure"], timeout=300)
    guest.run(["cmake", "--install", BUILD, "--prefix", "/usr/local"])
    # The same unit, told to run the application's binary instead of tandem-server.
    guest.write(DROP_IN, "[Service]\nExecStart=\nExecStart=/usr/local/bin/notes-server --port %i\n")
    guest.systemctl("daemon-reload")
    guest.systemctl("start", "tandem.target", "haproxy")
    system.wait_all_up(timeout=10)

    versions = {port: system.instance_health(port)[1].get("version") for port in INSTANCES.values()}
    posted = parallel([Request("POST", system.url("/api/notes"), b'{"text": "hello"}',
                               ("Content-Type: application/json",)) for _ in range(4)])
    read = parallel([Request("GET", system.url("/api/notes")) for _ in range(4)])

    cursor = system.cursor()
    load = PacedLoad(system.url("/api/notes"), rate=RATE, duration=LOAD_SECONDS)
    t0 = load.start()
    time.sleep(max(0.0, t0 + DRAIN_AT - time.monotonic()))
    stopped_at = time.monotonic()
    guest.systemctl("stop", "tandem@3001")
    stop_took = time.monotonic() - stopped_at
    outcomes = load.join()
    after = guest.show("tandem@3001.service", "ActiveState", "Result", "ExecMainStatus")
    events = [e.get("event") for e in system.events("tandem@3001.service", cursor)]
    failures = [o for o in outcomes if not o.ok]
    served = {i: sum(o.ok and o.instance == i for o in outcomes) for i in INSTANCES}

    summary = [line for line in own_tests.stdout.splitlines() if "tests passed" in line]
    report(f"built against the installed tandem-dev (tandem_DIR {found}); its own tests: "
           f"{summary}")
    report(f"under tandem@.service: /health versions {versions}; POST /api/notes "
           f"{sorted(o.status for o in posted)} from {sorted({o.instance for o in posted})}; "
           f"GET {sorted({o.instance for o in read})}")
    report(f"drain: `systemctl stop tandem@3001` took {fmt(stop_took)} under {RATE} GET/s: "
           f"{len(outcomes)} requests, {len(failures)} failed, answered by {served}; unit "
           f"{after}; its events {events}")

    assert found.startswith("/usr/lib/") and found.endswith("/cmake/tandem"), found
    assert "100% tests passed" in own_tests.stdout
    assert set(versions.values()) == {"1.0.0"}, "the instances are not the example application"
    assert all(o.status == 201 for o in posted)
    assert {o.instance for o in posted} == set(INSTANCES)
    assert all(o.ok and "notes" in o.json() for o in read)
    assert len(outcomes) == RATE * LOAD_SECONDS and not failures, failures[:3]
    assert ["draining", "listener_closed", "drained", "stopped"] == \
        [e for e in events if e in ("draining", "listener_closed", "drained", "stopped")]
    assert after["Result"] == "success" and after["ExecMainStatus"] == "0", after
