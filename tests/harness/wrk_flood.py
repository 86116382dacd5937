"""A request flood with wrk (tests/harness/wrk_flood.lua): many requests from one source address
as fast as wrk sends them, bounded in count and in time, with what came back.

    result = wrk_flood(stack.url(), "POST", "/api/session", requests=110_000, seconds=10)
    result["statuses"]          # {"200": n, "429": n, ...}

wrk connects from the address the kernel picks (127.0.0.1 towards 127.0.0.1): it has no option
for a source address, so the tests put the flood there and the clients they watch elsewhere.
"""

import pathlib

from . import wrk

SCRIPT = pathlib.Path(__file__).resolve().with_name("wrk_flood.lua")


def wrk_flood(base_url, method, path, requests, seconds, connections=50, cookie_name=None):
    """Sends `method path` to base_url on `connections` connections (one wrk thread) until
    `requests` answers or `seconds`, whichever comes first; returns the WRK-FLOOD summary (see
    the script) with "seconds" added. Raises wrk.WrkError if wrk is missing or fails."""
    result = wrk.run(base_url, SCRIPT, connections, seconds, socket_timeout=5,
                     script_args=[method, path, requests, cookie_name or ""])
    summary = result.line("WRK-FLOOD")
    summary["seconds"] = summary["duration_us"] / 1e6
    return summary
