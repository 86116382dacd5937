"""A background sampler for tests: calls `sample()` every `interval` seconds in a thread between
`with` entry and exit, so a test can watch something (HAProxy's view of a server, an instance's
/health) while it drives load and failures."""

import threading


class Poller:
    """Subclasses implement sample(); it runs in the poller's thread until the `with` block ends."""

    def __init__(self, interval, name):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def sample(self):
        raise NotImplementedError

    def _run(self):
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)
