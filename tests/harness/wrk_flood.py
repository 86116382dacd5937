"""A request flood with wrk (tests/harness/wrk_flood.lua): many requests from one source address
as fast as wrk sends them, bounded in count and in time, with what came back.

    result = wrk_flood(stack.url(), "POST", "/api/session", requests=110_000, seconds=10)
    result["statuses"]          # {"200": n, "429": n, ...}

wrk connects from the address the kernel picks (127.0.0.1 towards 127.0.0.1): it has no option
for a source address, so the tests put the flood there and the clients they watch elsewhere.
"""

import json
import pathlib
import shutil
import subprocess

SCRIPT = pathlib.Path(__file__).resolve().with_name("wrk_flood.lua")


class WrkError(RuntimeError):
    pass


def wrk_flood(base_url, method, path, requests, seconds, connections=50, cookie_name=None):
    """Sends `method path` to base_url on `connections` connections (one wrk thread) until
    `requests` answers or `seconds`, whichever comes first; returns the WRK-FLOOD summary (see
    the script) with "seconds" added. Raises WrkError if wrk is missing or fails."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkError("wrk is not installed (packaging/install-deps.sh test)")
    argv = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "-s", str(SCRIPT),
            base_url, "--", method, path, str(requests), cookie_name or ""]
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, timeout=seconds + 30, check=False)
    line = next((line for line in result.stdout.splitlines() if line.startswith("WRK-FLOOD ")),
                None)
    if result.returncode != 0 or line is None:
        raise WrkError(f"wrk exited {result.returncode}:\n{result.stdout[-2000:]}")
    summary = json.loads(line.split(" ", 1)[1])
    summary["seconds"] = summary["duration_us"] / 1e6
    return summary
