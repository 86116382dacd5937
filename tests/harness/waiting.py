"""Polling until something holds, bounded in time: the one loop the harness, the tests and the
benchmarks use to wait for a server to answer, a status to change or a process to appear.

    status = wait_until(lambda: api.server_status("tandem", "app-2"), timeout=10,
                        what="app-2 to be UP", holds=lambda s: s == "UP")

The predicate is called at once, then every `interval` seconds; its value is returned as soon as
`holds(value)` is true (by default: as soon as the value is truthy). It is always tried once more
when the deadline has passed, so a slow last attempt still counts. Exceptions of the types in
`ignore` count as "not yet" (the exception is then the last value seen); any other exception goes
to the caller at once, which is how a predicate says "this will never happen" (a process that
exited, say).
"""

import time


class WaitTimeout(RuntimeError):
    """The awaited condition did not hold in time; `last` is the last value seen."""

    def __init__(self, what, timeout, last):
        super().__init__(f"timed out after {timeout:g} s waiting for {what}; last seen: {last!r}")
        self.what = what
        self.timeout = timeout
        self.last = last


def wait_until(predicate, timeout, interval=0.05, what="the condition to hold", *, holds=bool,
               ignore=(), error=None):
    """Returns predicate()'s first value for which holds(value) is true. After `timeout` seconds
    raises error(last) when `error` is given (for callers whose exception type and message are
    their own), else WaitTimeout."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
        except ignore as caught:
            last = caught
        else:
            if holds(value):
                return value
            last = value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise error(last) if error is not None else WaitTimeout(what, timeout, last)
        time.sleep(min(interval, remaining))
