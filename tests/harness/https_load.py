"""HTTPS load with Python's ssl and asyncio, for drills that run for minutes over HTTPS.

    gets = ContinuousLoad(url, rate=100, ca_file=ca, resolve=("site:443:10.77.0.10",)).start()
    clients = [Client(name=f"c{n}", ca_file=ca, resolve=...) for n in range(50)]
    rounds = Rounds(clients, lambda client, n: session_post(url, client.name, n + 1), 0.5).start()
    ...
    rounds.stop(); outcomes = gets.stop()

The same Request and Outcome as load.py, the same meaning for each class's namesake there, but
not libcurl: this machine's libcurl 7.88 with GnuTLS was seen to stall on HTTPS (requests whose
TCP connection was waiting on nothing reported as timed out after 10 s, others in the same
process served), which would read as the balancer failing. Each client keeps one connection
alive and reuses it; an Outcome's error names the phase a failure happened in (connect, TLS
handshake, sending, waiting for the answer) and what the network said.
"""

import asyncio
import functools
import http.cookies
import ssl
import threading
import time
import urllib.parse

from tests.harness.load import DEFAULT_TIMEOUT, Outcome, Request


class _Attempt:
    """Where a request is (its error names the phase), and what it has been through."""

    def __init__(self):
        self.phase = "connect"
        self.received = False  # any byte of the answer
        self.resent = False


class _Failed(Exception):
    def __init__(self, phase, error):
        super().__init__(f"{phase}: {error}")


@functools.lru_cache(maxsize=None)
def _context(ca_file):
    """One TLS context per trusted file, shared by every client that trusts it (read once)."""
    return ssl.create_default_context(cafile=ca_file)


def _describe(error):
    if isinstance(error, asyncio.IncompleteReadError):
        return "connection closed before the whole answer"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class Client:
    """One HTTPS client: one connection kept alive and reused, and with cookies=True its own
    cookie jar (every Set-Cookie kept by name and sent back on every request).

    resolve: "name:port:address" entries, as a DNS record would say (the name is what TLS
    verifies and what the Host header says). A client is used by one load's thread at a time."""

    def __init__(self, name="", ca_file=None, resolve=(), timeout=DEFAULT_TIMEOUT, cookies=True):
        self.name = name
        self.timeout = timeout
        self.keeps_cookies = cookies
        self.context = _context(str(ca_file) if ca_file else None)
        self.addresses = {}
        for entry in resolve:
            host, port, address = entry.rsplit(":", 2)
            self.addresses[(host, int(port))] = address
        self.jar = {}
        self.outcomes = []
        self._stream = None  # (reader, writer, (host, port)) of the connection kept alive

    def cookies(self):
        """{name: value} of the cookies in this client's jar."""
        return dict(self.jar)

    async def send(self, request, scheduled=None):
        """Sends the request and records its Outcome (also returned)."""
        started = time.monotonic()
        attempt = _Attempt()
        try:
            status, headers, body = await asyncio.wait_for(self._exchange(request, attempt),
                                                           self.timeout)
            error = ""
        except asyncio.TimeoutError:
            self._drop()
            status, headers, body = 0, {}, b""
            error = f"{attempt.phase}: no progress within {self.timeout:g} s"
        except _Failed as failure:
            self._drop()
            status, headers, body = 0, {}, b""
            error = str(failure)
        outcome = Outcome(request, scheduled if scheduled is not None else started, started,
                          time.monotonic(), status=status,
                          instance=headers.get("x-container-id", ""), error=error,
                          headers=headers, body=body, http_version="1.1" if status else "",
                          resent=attempt.resent)
        self.outcomes.append(outcome)
        return outcome

    def close(self):
        """Closes the connection kept alive (also done by the load that used the client)."""
        self._drop()

    async def _exchange(self, request, attempt):
        url = urllib.parse.urlsplit(request.url)
        target = (url.hostname, url.port or 443)
        if self._stream is not None and (self._stream[2] != target or self._stream[0].at_eof()):
            # Another site, or a connection the server has closed since its last answer (it may
            # close an idle one at any time; a reloaded balancer closes its idle ones): a new one,
            # as a browser's check of a pooled connection would find.
            self._drop()
        reused = self._stream is not None
        try:
            return await self._once(request, url, target, attempt)
        except _Failed:
            # A kept-alive connection that dies before any answer (closed by the server as the
            # request went out, or reset by a balancer that took over the address of one that
            # died): the request is sent once more on a new connection, whatever its method, as
            # browsers do. The first may have been carried out (Outcome.resent says so).
            if not reused or attempt.received \
                    or attempt.phase not in ("sending", "waiting for the answer"):
                raise
            self._drop()
            attempt.resent = True
            return await self._once(request, url, target, attempt)

    async def _once(self, request, url, target, attempt):
        if self._stream is None:
            await self._connect(target, attempt)
        reader, writer, _ = self._stream
        attempt.phase = "sending"
        head = [f"{request.method} {url.path or '/'}{'?' + url.query if url.query else ''} "
                "HTTP/1.1", f"Host: {url.hostname}", "Connection: keep-alive"]
        if self.jar:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.jar.items()))
        head += list(request.headers)
        if request.body is not None or request.method == "POST":
            head.append(f"Content-Length: {len(request.body or b'')}")
        try:
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (request.body or b""))
            await writer.drain()
            attempt.phase = "waiting for the answer"
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as error:
                attempt.received = bool(error.partial)
                raise
            attempt.phase, attempt.received = "reading the answer", True
            status, headers, cookies = self._parse_head(head)
            body = await self._read_body(reader, headers, request.method)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError, ValueError) as error:
            raise _Failed(attempt.phase, _describe(error)) from error
        if self.keeps_cookies:
            self._keep(cookies)
        if headers.get("connection", "").lower() == "close" or "content-length" not in headers \
                and headers.get("transfer-encoding", "").lower() != "chunked":
            self._drop()
        return status, headers, body

    async def _connect(self, target, attempt):
        host, port = target
        address = self.addresses.get(target, host)
        try:
            attempt.phase = "connect"
            reader, writer = await asyncio.open_connection(address, port)
            attempt.phase = "TLS handshake"
            self._stream = (reader, writer, target)
            await writer.start_tls(self.context, server_hostname=host)
        except (OSError, ssl.SSLError) as error:
            raise _Failed(attempt.phase, _describe(error)) from error

    @staticmethod
    def _parse_head(data):
        lines = data.decode("latin-1").split("\r\n")
        version, code = lines[0].split(" ", 2)[:2]
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1 answer: {lines[0]!r}")
        headers, cookies = {}, []
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
                if name.strip().lower() == "set-cookie":
                    cookies.append(value.strip())
        return int(code), headers, cookies

    @staticmethod
    async def _read_body(reader, headers, method):
        if method == "HEAD":
            return b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":
                        pass  # trailers
                    return body
                body += await reader.readexactly(size)
                await reader.readexactly(2)
        if "content-length" in headers:
            return await reader.readexactly(int(headers["content-length"]))
        return await reader.read()  # to the end of the connection

    def _keep(self, cookies):
        for line in cookies:
            cookie = http.cookies.SimpleCookie()
            cookie.load(line)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.jar.pop(name, None)
                else:
                    self.jar[name] = morsel.value

    def _drop(self):
        if self._stream is not None:
            self._stream[1].transport.abort()
            self._stream = None


class _Background:
    """Runs self._main() on its own event loop in its own thread, from start() until stop()."""

    def __init__(self, name):
        self._stopping = threading.Event()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._error = None
        self.start_time = None

    def start(self):
        self._thread.start()
        self._started.wait()
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        try:
            self.start_time = time.monotonic()
            self._started.set()
            asyncio.run(self._main())
        except BaseException as error:  # Reported by stop() in the caller's thread.
            self._error = error
            self._started.set()

    async def _pause(self, seconds):
        """Sleeps up to `seconds`; True when stop() was called meanwhile (checked every 50 ms)."""
        end = time.monotonic() + seconds
        while not self._stopping.is_set():
            left = end - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.05))
        return True

    def stop(self):
        """Ends the load (what is in flight finishes); raises what went wrong in the thread."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()
        if self._error is not None:
            raise self._error


class ContinuousLoad(_Background):
    """`rate` cookieless requests per second (GET url, or request_for(i)), from start() until
    stop(), started on schedule whether or not earlier ones finished, over connections kept alive
    and reused (a client per request in flight). stop() issues no more, lets those in flight
    finish, and returns every outcome in order."""

    def __init__(self, url, rate, request_for=None, **client_options):
        super().__init__("https-load")
        self.rate = rate
        self.request_for = request_for or (lambda number: Request("GET", url))
        self.client_options = client_options
        self.outcomes = []

    async def _main(self):
        idle, clients, pending = [], [], set()

        async def one(client, request, scheduled):
            self.outcomes.append(await client.send(request, scheduled))
            client.outcomes.clear()
            idle.append(client)

        issued = 0
        try:
            while not await self._pause((due := self.start_time + issued / self.rate)
                                        - time.monotonic()):
                if not idle:
                    clients.append(Client(cookies=False, **self.client_options))
                    idle.append(clients[-1])
                task = asyncio.create_task(one(idle.pop(), self.request_for(issued), due))
                pending.add(task)
                task.add_done_callback(pending.discard)
                issued += 1
            if pending:
                await asyncio.gather(*pending)
        finally:
            for client in clients:
                client.close()

    def stop(self):
        """Issues no more requests, lets those in flight finish; every outcome, in order."""
        super().stop()
        return sorted(self.outcomes, key=lambda outcome: outcome.scheduled)


class Rounds(_Background):
    """Clients sending rounds of requests until stopped: in each round every client sends
    make_request(client, n), n being its number of requests so far, all at once; `pause` seconds
    between two rounds. Outcomes land in each client.outcomes."""

    def __init__(self, clients, make_request, pause):
        super().__init__("https-rounds")
        self.clients = list(clients)
        self.make_request = make_request
        self.pause = pause
        self.rounds = 0

    async def _main(self):
        try:
            while not self._stopping.is_set():
                await asyncio.gather(*(client.send(self.make_request(client, len(client.outcomes)))
                                       for client in self.clients))
                self.rounds += 1
                if await self._pause(self.pause):
                    break
        finally:
            for client in self.clients:
                client.close()
