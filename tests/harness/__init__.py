"""The local stack harness: HAProxy and tandem-server instances on loopback, for tests,
benchmarks and a developer's shell (see stack.py)."""
