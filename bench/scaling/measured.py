"""What the scaling benchmark measures and judges: the routes and their wrk scripts, the
configurations each route runs in, the balance algorithms compared, the targets, and the error
that stops a run."""

import pathlib

# bench/, where the wrk scripts and results/ are; the repository above it.
HERE = pathlib.Path(__file__).resolve().parents[1]
REPO = HERE.parent

PROG = "scaling"
EXIT_BROKEN, EXIT_USAGE, EXIT_MISSING, EXIT_INTERRUPTED = 1, 2, 77, 130

# Targets of the CPU-bound route (HAProxy + 2 instances against HAProxy + 1, same connections).
RPS_RATIO_MIN = 1.85  # Two cores make 2.0 the limit; HAProxy and wrk take part of them.
P99_RATIO_MAX = 0.60  # Half the queue per instance would give 0.5.
# Other work on the machine (in CPUs) from which a phase is flagged as noisy.
OTHERS_WARN_CPUS = 0.25
# What one CPU-bound request should cost, in ms of CPU; N is calibrated to it.
COST_TARGET_MS = 1.0
# wrk is one client address sending tens of thousands of requests a second (on the session route,
# with a session cookie set in every answer): HAProxy's per-source limits would refuse nearly all
# of it, and the benchmark would measure 429s. Their table and rules stay, as deployed, so their
# cost is measured; only their thresholds are put out of wrk's reach (--set overrides these too).
PER_SOURCE_OUT_OF_REACH = {"tandem_lb_source_maxconn": 1_000_000,
                           "tandem_lb_source_request_rate": 1_000_000_000,
                           "tandem_lb_source_session_rate": 1_000_000_000,
                           "tandem_lb_source_connection_rate": 1_000_000_000}


class BenchError(RuntimeError):
    """Something broke: the benchmark cannot go on."""


# --- routes and configurations --------------------------------------------------------------


class Route:
    def __init__(self, key, title, script, cheap):
        self.key = key
        self.title = title
        self.script = HERE / script
        self.cheap = cheap


ROUTES = {
    "whoami": Route("whoami", "GET /api/whoami", "wrk-whoami.lua", cheap=True),
    "load-test": Route("load-test", "GET /api/load-test", "wrk-load-test.lua", cheap=False),
    "session": Route("session", "POST /api/session", "wrk-session.lua", cheap=True),
}

# Configurations, in the order they run for each route; {alt} is the alternative balance.
CONFIGS = {
    "direct": "direct to app-1",
    "haproxy-1": "HAProxy + 1 instance",
    "haproxy-2": "HAProxy + 2 instances",
    "haproxy-2-alt": "HAProxy + 2 instances, {alt}",
}
SHORT = {"direct": "direct", "haproxy-1": "HAProxy + 1", "haproxy-2": "HAProxy + 2",
         "haproxy-2-alt": "HAProxy + 2 {alt}"}
# The balance algorithms compared: the deployed one and the other.
BALANCES = ("leastconn", "roundrobin")


def configs_for(route):
    keys = ["direct", "haproxy-1", "haproxy-2"]
    # Only where requests are long does the balance algorithm matter (see bench/README.md).
    if not route.cheap:
        keys.append("haproxy-2-alt")
    return keys


def balances(settings):
    """{"deployed": the balance of the configuration measured (haproxy/defaults.yml with the
    --set values), "alternative": the other one}."""
    deployed = settings["tandem_lb_balance"]
    return {"deployed": deployed, "alternative": next(b for b in BALANCES if b != deployed)}
