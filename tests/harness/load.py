"""HTTP load for the stack tests, with libcurl (pycurl) as the client and its cookie engine.

Every request ends as an Outcome carrying its times (time.monotonic()), its HTTP status, the
instance that answered (the X-Container-Id header) and curl's error if any, so that tests compute
failure rates, per-second windows and distributions from what actually happened.

- parallel(requests):         many requests at once (one fresh, cookieless connection each)
- PacedLoad(url, rate, ...):  a fixed request rate for a fixed time, in a thread
- ContinuousLoad(url, rate):  the same rate until stopped, for an operation of unknown length
- Client + run_clients(...):  browser-like clients, each with its own cookie jar, each sending a
                              sequence of requests one after the other, all clients at once
- Rounds(clients, ...):       the same in rounds, in a thread, until stopped

Clients connect from the address the kernel picks (127.0.0.1 towards 127.0.0.1) unless given a
`source` address (any of 127.0.0.0/8 on loopback): HAProxy limits each source address on its own,
so a test puts the client it watches on another address than the load it fends off.
"""

import io
import json
import os
import threading
import time
from dataclasses import dataclass, field

import pycurl

DEFAULT_TIMEOUT = 10.0
_HTTP_VERSIONS = {pycurl.CURL_HTTP_VERSION_1_0: "1.0", pycurl.CURL_HTTP_VERSION_1_1: "1.1",
                  pycurl.CURL_HTTP_VERSION_2_0: "2"}


@dataclass
class Request:
    method: str
    url: str
    body: bytes = None
    headers: tuple = ()  # ("Name: value", ...)


@dataclass
class Outcome:
    request: Request
    scheduled: float  # when it was due (monotonic); equals started unless paced
    started: float
    finished: float
    status: int = 0  # 0: no HTTP answer
    instance: str = ""  # X-Container-Id of the answer, "" if none
    error: str = ""  # curl's error message, "" if the transfer completed
    headers: dict = field(default_factory=dict)  # lower-case name -> last value
    body: bytes = b""
    http_version: str = ""  # "1.0", "1.1" or "2": what the answer came over
    # Sent a second time, on a new connection, after the kept-alive one died before any answer
    # (https_load): the first may have been carried out all the same.
    resent: bool = False

    @property
    def ok(self):
        return not self.error and self.status == 200

    def json(self):
        return json.loads(self.body)


def percentile(values, fraction):
    """The nearest-rank percentile (fraction 0.99: p99) of values; None when there are none."""
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, -(-len(ordered) * fraction // 1))  # ceil(n * fraction), at least 1
    return ordered[int(rank) - 1]


def latencies(outcomes):
    """Seconds from sending to the whole answer, of each outcome."""
    return [outcome.finished - outcome.started for outcome in outcomes]


class Client:
    """One HTTP client: its own libcurl handle and, with cookies=True, its own cookie jar.

    source: the local address its connections come from (None: the kernel's choice).
    fresh_connections: every request on a new connection, closed after it (a new visitor each
    time), instead of one kept alive and reused."""

    def __init__(self, name="", cookies=True, timeout=DEFAULT_TIMEOUT, source=None,
                 fresh_connections=False, ca_file=None, http2=False, resolve=()):
        self.name = name
        self.timeout = timeout
        self.source = source
        self.curl = pycurl.Curl()
        if cookies:
            self.curl.setopt(pycurl.COOKIEFILE, "")  # An empty name enables the in-memory jar.
        if source:
            # "host!": an address, never taken for an interface name.
            self.curl.setopt(pycurl.INTERFACE, f"host!{source}")
        if fresh_connections:
            self.curl.setopt(pycurl.FRESH_CONNECT, 1)
            self.curl.setopt(pycurl.FORBID_REUSE, 1)
        if ca_file:
            # HTTPS verified against this file's certificates (a stack's self-signed one).
            self.curl.setopt(pycurl.CAINFO, str(ca_file))
        if http2:
            # HTTP/2 when the server offers it over TLS (ALPN), else HTTP/1.1.
            self.curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
        # "name:port:address": the name in URLs (and in TLS's SNI and verification) is reached at
        # that address, as a DNS record would say. Set again for every transfer (_Transfer): curl
        # loads the list into the DNS cache of the multi handle running the transfer, and forgets
        # it once loaded, so a handle moved to another multi would lose it.
        self.resolve = list(resolve)
        self.outcomes = []

    def cookies(self):
        """{name: value} of the cookies in this client's jar."""
        jar = {}
        for line in self.curl.getinfo(pycurl.INFO_COOKIELIST):
            fields = line.split("\t")
            if len(fields) >= 7:
                jar[fields[5]] = fields[6]
        return jar

    def close(self):
        self.curl.close()


class _Transfer:
    """One request in flight on a client's handle."""

    def __init__(self, client, request, scheduled):
        self.client = client
        self.request = request
        self.scheduled = scheduled
        self.headers = {}
        self.body = io.BytesIO()
        curl = client.curl
        curl.setopt(pycurl.URL, request.url)
        if request.method == "GET":
            curl.setopt(pycurl.HTTPGET, 1)
        elif request.method == "POST":
            curl.setopt(pycurl.POSTFIELDS, request.body or b"")
        else:
            curl.setopt(pycurl.CUSTOMREQUEST, request.method)
        curl.setopt(pycurl.HTTPHEADER, list(request.headers))
        if client.resolve:
            curl.setopt(pycurl.RESOLVE, client.resolve)
        curl.setopt(pycurl.HEADERFUNCTION, self._on_header)
        curl.setopt(pycurl.WRITEDATA, self.body)
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.TIMEOUT_MS, int(client.timeout * 1000))
        self.started = time.monotonic()

    def _on_header(self, line):
        text = line.decode("iso-8859-1").strip()
        if text.startswith("HTTP/"):
            self.headers = {}  # A new answer (after a 100 Continue, say) starts afresh.
        elif ":" in text:
            name, value = text.split(":", 1)
            self.headers[name.strip().lower()] = value.strip()

    def finish(self, error):
        status = self.client.curl.getinfo(pycurl.RESPONSE_CODE)
        if error:
            # curl's own message may not name the system call's error (a refused connection
            # reads "Couldn't connect to server"): the errno says what the network answered.
            errno = self.client.curl.getinfo(pycurl.OS_ERRNO)
            if errno:
                error = f"{error} ({os.strerror(errno)})"
        version = _HTTP_VERSIONS.get(self.client.curl.getinfo(pycurl.INFO_HTTP_VERSION), "")
        outcome = Outcome(self.request, self.scheduled, self.started, time.monotonic(),
                          status=status, instance=self.headers.get("x-container-id", ""),
                          error=error, headers=self.headers, body=self.body.getvalue(),
                          http_version=version)
        self.client.outcomes.append(outcome)
        return outcome


class _Multi:
    """A CurlMulti driving transfers, at most one per client at a time."""

    def __init__(self):
        self.multi = pycurl.CurlMulti()
        self.active = {}

    def add(self, client, request, scheduled=None):
        transfer = _Transfer(client, request, scheduled)
        if transfer.scheduled is None:
            transfer.scheduled = transfer.started
        self.active[client.curl] = transfer
        self.multi.add_handle(client.curl)

    def step(self, wait):
        """Runs what is ready, waits at most `wait` seconds for sockets; returns the completed
        transfers as (client, outcome) pairs."""
        # Drive first, so that transfers added since the last step start at once.
        self._perform()
        if self.active:
            self.multi.select(wait)
        elif wait > 0:
            time.sleep(wait)
        self._perform()
        done = []
        while True:
            _, succeeded, failed = self.multi.info_read()
            for curl in succeeded:
                done.append(self._complete(curl, ""))
            for curl, _, message in failed:
                done.append(self._complete(curl, message or "failed"))
            if not succeeded and not failed:
                break
        return done

    def _perform(self):
        while True:
            code, _ = self.multi.perform()
            if code != pycurl.E_CALL_MULTI_PERFORM:
                return

    def _complete(self, curl, error):
        self.multi.remove_handle(curl)
        transfer = self.active.pop(curl)
        return transfer.client, transfer.finish(error)

    def close(self):
        for curl in list(self.active):
            self.multi.remove_handle(curl)
        self.active.clear()
        self.multi.close()


def parallel(requests, timeout=DEFAULT_TIMEOUT, source=None, **options):
    """Sends all requests at once, each from a fresh cookieless client (from the source address
    when given, with Client's other options: ca_file, resolve, ...); outcomes in order."""
    multi = _Multi()
    clients = []
    try:
        for request in requests:
            client = Client(cookies=False, timeout=timeout, source=source, **options)
            clients.append(client)
            multi.add(client, request)
        while multi.active:
            multi.step(0.1)
        return [client.outcomes[0] for client in clients]
    finally:
        multi.close()
        for client in clients:
            client.close()


def run_clients(clients, make_request, rounds):
    """Each client sends `rounds` requests one after the other (make_request(client, i) builds
    the i-th), all clients at once. Returns nothing: outcomes land in each client.outcomes."""
    multi = _Multi()
    sent = {id(client): 0 for client in clients}
    try:
        for client in clients:
            if rounds > 0:
                multi.add(client, make_request(client, 0))
                sent[id(client)] = 1
        while multi.active:
            for client, _ in multi.step(0.1):
                if sent[id(client)] < rounds:
                    multi.add(client, make_request(client, sent[id(client)]))
                    sent[id(client)] += 1
    finally:
        multi.close()


class PacedLoad:
    """`rate` cookieless requests per second for `duration` seconds, in a background thread.

    Requests are started on schedule (start + i / rate) whether or not earlier ones finished; the
    connections are kept alive and reused, as a busy client population's would be. Each request
    is bounded by `timeout`, so the whole run ends by duration + timeout. The i-th request is
    GET url, or request_for(i) when given (a Request: a mix of routes, say). Its clients connect
    from `source` when given; with fresh_connections every request opens (and closes) its own
    connection, as a stream of new visitors would.
    """

    def __init__(self, url, rate, duration, timeout=DEFAULT_TIMEOUT, request_for=None,
                 source=None, fresh_connections=False, ca_file=None, http2=False, resolve=()):
        self.url = url
        self.source = source
        self.fresh_connections = fresh_connections
        self.tls = {"ca_file": ca_file, "http2": http2, "resolve": resolve}
        self.request_for = request_for or (lambda number: Request("GET", url))
        self.rate = rate
        self.duration = duration
        self.timeout = timeout
        self.outcomes = []
        self.start_time = None
        self._started = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="paced-load", daemon=True)
        self._error = None

    def start(self):
        self._thread.start()
        self._started.wait()
        return self.start_time

    def join(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return sorted(self.outcomes, key=lambda outcome: outcome.scheduled)

    def stop(self):
        """Issues no more requests (those in flight finish) and returns join()'s outcomes: for
        a load that lasts as long as an operation whose length is not known in advance."""
        self._stopping.set()
        return self.join()

    def _run(self):
        multi = _Multi()
        clients = []
        idle = []  # Cookieless clients whose last request is done, ready for another.
        count = int(round(self.rate * self.duration))
        try:
            self.start_time = time.monotonic()
            self._started.set()
            issued = 0
            while (issued < count and not self._stopping.is_set()) or multi.active:
                now = time.monotonic()
                while issued < count and not self._stopping.is_set() \
                        and self.start_time + issued / self.rate <= now:
                    if not idle:
                        clients.append(Client(cookies=False, timeout=self.timeout,
                                              source=self.source,
                                              fresh_connections=self.fresh_connections,
                                              **self.tls))
                        idle.append(clients[-1])
                    client = idle.pop()
                    multi.add(client, self.request_for(issued),
                              scheduled=self.start_time + issued / self.rate)
                    issued += 1
                due = self.start_time + issued / self.rate if issued < count else now + 0.1
                for client, outcome in multi.step(max(0.0, min(due - time.monotonic(), 0.1))):
                    self.outcomes.append(outcome)
                    client.outcomes.clear()
                    idle.append(client)
        except Exception as error:  # Reported by join() in the caller's thread.
            self._error = error
            self._started.set()
        finally:
            multi.close()
            for client in clients:
                client.close()

    def windows(self, first, last):
        """Successful answers per 1 s window [start + k, start + k + 1), for k in first..last-1,
        by the time each answer arrived."""
        counts = [0] * (last - first)
        for outcome in self.outcomes:
            if outcome.ok:
                k = int(outcome.finished - self.start_time)
                if first <= k < last:
                    counts[k - first] += 1
        return counts


class ContinuousLoad:
    """`rate` requests per second (GET url, or request_for(i)) from entering the `with` until
    stop(): back-to-back PacedLoad segments, each started when the previous one's last request is
    due, so the rate holds across them, for an operation whose length is not known in advance (a
    playbook). PacedLoad's options (ca_file, resolve, ...) apply to every segment."""

    def __init__(self, url, rate, segment=2.0, **options):
        self.url = url
        self.rate = rate
        self.segment = segment
        self.options = options
        self.segments = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="continuous-load", daemon=True)
        self.started = self.stopped = None
        self.run_started = self.run_ended = None  # for the caller: when its operation ran

    def __enter__(self):
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        due = time.monotonic()
        while not self._stop.is_set():
            time.sleep(max(0.0, due - time.monotonic()))
            segment = PacedLoad(self.url, rate=self.rate, duration=self.segment, **self.options)
            segment.start()
            self.segments.append(segment)
            due = segment.start_time + self.segment

    def stop(self):
        """Stops issuing (the current segment runs out); returns every outcome, in order."""
        if self.stopped is None:
            self._stop.set()
            self._thread.join()
            self.stopped = time.monotonic()
        outcomes = []
        for segment in self.segments:
            outcomes += segment.join()
        return sorted(outcomes, key=lambda outcome: outcome.scheduled)


class Rounds:
    """Clients (each with its own cookie jar and handle) sending rounds of requests in a
    background thread until stopped: in each round every client sends make_request(client, n),
    n being its number of requests so far, all at once; `pause` seconds between two rounds.
    Outcomes land in each client.outcomes. For steady traffic from sticky clients during an
    operation whose length is not known in advance (a rolling restart, say)."""

    def __init__(self, clients, make_request, pause):
        self.clients = list(clients)
        self.make_request = make_request
        self.pause = pause
        self.rounds = 0
        self._stop = threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="rounds", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._halt()

    def _run(self):
        try:
            while not self._stop.is_set():
                run_clients(self.clients,
                            lambda client, _: self.make_request(client, len(client.outcomes)), 1)
                self.rounds += 1
                self._stop.wait(self.pause)
        except Exception as error:  # Reported by stop() in the caller's thread.
            self._error = error

    def _halt(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def stop(self):
        """Ends the current round and stops; raises what went wrong in the thread, if anything."""
        self._halt()
        if self._error is not None:
            raise self._error


def session_post(url, client_name, number, session_id=None):
    """POST /api/session's request: {"clientId", "requestNum"}, and X-Session-Id when given."""
    body = json.dumps({"clientId": client_name, "requestNum": number}).encode()
    headers = ["Content-Type: application/json"]
    if session_id:
        headers.append(f"X-Session-Id: {session_id}")
    return Request("POST", url, body, tuple(headers))
