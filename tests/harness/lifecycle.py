"""What the harness's long-lived objects share: started on entering a `with`, taken down on
leaving it, and taken down too when starting fails half-way (a guest booted, its sshd not), so
that nothing outlives the test that made it."""


class Started:
    """A context manager over the subclass's start() and close(); close() must cope with a start
    that got only part of the way."""

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
