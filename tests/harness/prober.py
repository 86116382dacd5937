"""Times a server's answers from a process of its own: the test process runs load generators and
monitors in threads that share one interpreter lock, which would add their waits to every figure.
The prober keeps one keep-alive connection per URL and sleeps between requests, as a health
checker does, so what it measures is the server's answer and the network, not the prober."""

import http.client
import os
import multiprocessing
import time
import urllib.parse

PROBER_NICE = -10


def _probe(urls, interval, duration, results):
    # Ahead of the load it measures in the kernel's queue, as a health checker should be: a
    # figure of the server's, not of who else wanted the CPU at that moment (root only; without
    # the privilege the prober runs as it is).
    try:
        os.nice(PROBER_NICE)
    except OSError:
        pass
    connections = {}
    samples = []  # (url, HTTP status or 0, seconds)
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        for url in urls:
            parts = urllib.parse.urlsplit(url)
            started = time.perf_counter()
            try:
                connection = connections.get(url)
                if connection is None:
                    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
                    connections[url] = connection
                connection.request("GET", parts.path or "/")
                answer = connection.getresponse()
                answer.read()
                samples.append((url, answer.status, time.perf_counter() - started))
            except (OSError, http.client.HTTPException):
                connections.pop(url, None)
                samples.append((url, 0, time.perf_counter() - started))
        time.sleep(interval)
    results.put(samples)


class Prober:
    """GETs each of `urls` every `interval` seconds for `duration` seconds in a child process;
    `samples()` (after the run) gives (url, status, seconds) for every request."""

    def __init__(self, urls, interval, duration):
        context = multiprocessing.get_context("spawn")
        self._results = context.Queue()
        self._process = context.Process(target=_probe, args=(list(urls), interval, duration,
                                                             self._results), daemon=True)
        self._samples = None
        self.duration = duration

    def start(self):
        self._process.start()
        return self

    def samples(self):
        if self._samples is None:
            self._samples = self._results.get(timeout=self.duration + 30)
            self._process.join(timeout=10)
        return self._samples
