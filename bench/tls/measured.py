"""What the TLS benchmark measures: its phases (protocol, scheme, how connections are made) and
the counts each phase sends by default. The exit statuses, the paths and BenchError are the
scaling benchmark's (bench/scaling/measured.py)."""

from dataclasses import dataclass

from bench.scaling import measured as scaling_measured

PROG = "tls"
PATH = "/api/whoami"

# Requests of each keep-alive phase: at 30,000-50,000 requests/s a phase lasts a few seconds,
# which /proc's 10 ms clock ticks resolve to about 1 %.
REQUESTS = 200_000
# Requests of each phase that opens a connection per request: a new TLS connection costs HAProxy
# about as much as twenty keep-alive requests, so these phases last about as long.
NEW_CONNECTIONS = 10_000
SMOKE_REQUESTS = 10_000
# Enough for the cheapest of them (plain HTTP, about 60 µs of HAProxy each) to span several of
# /proc's 10 ms clock ticks.
SMOKE_NEW_CONNECTIONS = 1000
# Clients at once (h2load -c) in the phases that keep their connections.
CONNECTIONS = 16
# HTTP/2 streams in flight per connection (h2load -m): what a browser loading a page does.
STREAMS = 10
# h2load cannot open a new connection for each request without resuming the TLS session it had:
# the full-handshake phases run rounds of h2load with this many clients that each open one
# connection, send one request and close. Each round is a new h2load process, so no client has a
# session to resume; between two rounds HAProxy waits for the next h2load to start (about 6 ms).
ROUND_CLIENTS = 100
# An unmeasured run of this share of a phase's requests comes before it (not with --smoke).
WARMUP_SHARE = 0.05
# Other work on the machine (in CPUs) from which a phase is flagged as noisy: scaling.sh's.
OTHERS_WARN_CPUS = scaling_measured.OTHERS_WARN_CPUS


@dataclass(frozen=True)
class Phase:
    key: str
    title: str
    scheme: str      # "http": stack.url(); "https": stack.https_url()
    protocol: str    # what ALPN must pick (h2load's "Application protocol"): h2 or http/1.1
    connections: str  # "keep-alive", "rounds" (full handshakes) or "close" (resumed ones)

    @property
    def new_connection_per_request(self):
        return self.connections != "keep-alive"


# In the order they run; the first is the reference of every ratio. The last two explain the
# third: how much of a new connection's cost is TCP, and how much a resumed session saves.
PHASES = (
    Phase("h1", "HTTP/1.1, keep-alive", "http", "http/1.1", "keep-alive"),
    Phase("h1-tls", "HTTPS/1.1, keep-alive", "https", "http/1.1", "keep-alive"),
    Phase("h1-tls-new", "HTTPS/1.1, new connection per request", "https", "http/1.1", "rounds"),
    Phase("h2-tls", f"HTTP/2 over TLS, {STREAMS} streams", "https", "h2", "keep-alive"),
    Phase("h1-new", "HTTP/1.1, new connection per request", "http", "http/1.1", "rounds"),
    Phase("h1-tls-resumed", "HTTPS/1.1, new connection, resumed", "https", "http/1.1", "close"),
)
REFERENCE = PHASES[0].key
