"""What every pytest suite under tests/ shares (stack, system, ansible, bench). pytest loads this
file before the suite's own conftest.py, whichever test file is run.

- The repository root is put on sys.path, so tests import `tests.harness...` from any directory.
- SIGTERM and SIGHUP unwind the run like Ctrl-C (tests/harness/processes.py), so every fixture
  stops what it started.
- `item.report_setup` / `item.report_call`: the outcome of each phase of a test, for fixtures that
  show logs when their test failed.
- `report(line)` records a measured number: printed at once (visible with -s) and repeated in a
  "measured" section at the end of the run, so it lands in the CTest log even with -q.
"""

import pathlib
import sys

import pytest

sys.dont_write_bytecode = True
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.harness.processes import raise_on_termination  # noqa: E402

_measurements = []


def pytest_configure(config):
    raise_on_termination()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def pytest_terminal_summary(terminalreporter):
    if _measurements:
        terminalreporter.section("measured")
        for line in _measurements:
            terminalreporter.write_line(line)


@pytest.fixture
def report(request):
    def record(line):
        print(line, flush=True)
        _measurements.append(f"{request.node.name}: {line}")

    return record
