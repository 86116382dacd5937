"""New visitors over HTTPS: paced requests, each on a new TLS connection verified against a
given certificate, in a background thread, with Python's ssl module.

    visitors = NewVisitors(port, ca_file, rate=40, seconds=8).start()
    ...
    results = visitors.stop()      # or .join(); [(latency seconds or None, error text), ...]
    visitors.certificates          # the fingerprint of the certificate each request got

The harness's libcurl client (load.py) keeps connections alive well, but with a new TLS
connection per request it was seen to leave one descriptor behind per request and, after a few
hundred, to stop completing transfers at all (this machine's libcurl 7.88 with GnuTLS), which
would read as HAProxy failing. This one connects, handshakes, sends GET, reads the answer to the
end and closes, one request after the other.
"""

import hashlib
import socket
import ssl
import threading
import time


class NewVisitors:
    def __init__(self, port, ca_file, rate, seconds, path="/api/whoami", host="127.0.0.1",
                 server_name="localhost", source=None, timeout=10.0):
        self.address = (host, port)
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.server_name = server_name
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {server_name}\r\n"
                        "Connection: close\r\n\r\n").encode()
        self.rate = rate
        self.count = int(round(rate * seconds))
        self.source = (source, 0) if source else None
        self.timeout = timeout
        self.results = []  # (latency, or None for a failure; error text), in order
        self.started = []  # monotonic start of each request
        self.certificates = []  # SHA-256 fingerprint (AA:BB:...) of the certificate each got
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tls-visitors", daemon=True)

    def start(self):
        self._thread.start()
        return self

    def join(self):
        self._thread.join()
        return self.results

    def stop(self):
        """Sends no more requests (the one in flight finishes); returns the results."""
        self._stopping.set()
        return self.join()

    def failures(self):
        return [error for latency, error in self.results if latency is None]

    def certificates_after(self, when):
        """The fingerprints of the certificates served to the requests begun after `when`."""
        return {fingerprint for began, fingerprint in zip(self.started, self.certificates)
                if began > when}

    def latencies(self):
        return [latency for latency, _ in self.results if latency is not None]

    def _run(self):
        start = time.monotonic()
        for number in range(self.count):
            delay = start + number / self.rate - time.monotonic()
            if self._stopping.wait(max(0.0, delay)):
                return
            began = time.monotonic()
            self.started.append(began)
            try:
                with socket.create_connection(self.address, timeout=self.timeout,
                                              source_address=self.source) as raw, \
                        self.context.wrap_socket(raw, server_hostname=self.server_name) as conn:
                    digest = hashlib.sha256(conn.getpeercert(binary_form=True)).hexdigest()
                    self.certificates.append(":".join(
                        digest[i:i + 2] for i in range(0, len(digest), 2)).upper())
                    conn.sendall(self.request)
                    answer = b""
                    while chunk := conn.recv(4096):
                        answer += chunk
                ok = answer.startswith(b"HTTP/1.1 200 ")
                self.results.append((time.monotonic() - began if ok else None,
                                     "" if ok else answer[:80].decode("latin-1")))
            except (OSError, ssl.SSLError) as error:
                self.results.append((None, str(error)))
            if len(self.certificates) < len(self.results):
                self.certificates.append("")  # No handshake completed.
