"""Fixtures of the stack tests: real HAProxy, real tandem-server instances, on loopback.

`make_stack(**kwargs)` starts a tests.harness.stack.Stack and guarantees its teardown, also when
the test fails or the run is interrupted (SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C; children
die with the harness even on SIGKILL, see tests/harness/processes.py). When a test fails, the end
of every log of its stacks is printed with the failure.

`report(line)`, sys.path and signal handling come from tests/conftest.py.
"""

import pytest

from tests.harness.processes import tail
from tests.harness.redis import RedisServer
from tests.harness.stack import Stack, find_server_bin


def pytest_addoption(parser):
    parser.addoption("--server-bin", default=None,
                     help="tandem-server binary (default: $TANDEM_SERVER_BIN, else a build dir)")


@pytest.fixture(scope="session")
def server_bin(pytestconfig):
    return find_server_bin(pytestconfig.getoption("server_bin"))


@pytest.fixture
def make_stack(request, server_bin):
    stacks = []

    def make(**kwargs):
        kwargs.setdefault("server_bin", server_bin)
        stack = Stack(**kwargs)
        stacks.append(stack)
        stack.up()
        return stack

    yield make
    failed = any(getattr(request.node, f"report_{when}", None) is not None
                 and getattr(request.node, f"report_{when}").failed for when in ("setup", "call"))
    unclean = []
    for stack in stacks:
        if failed:
            logs = [("haproxy", stack.haproxy_log)]
            logs += [(i.id, i.log_path) for i in stack.instances.values()]
            for name, path in logs:
                print(f"----- {name}: {path} (last lines)\n{tail(path, 40)}")
        codes = stack.down(remove_workdir=False)
        for name, code in codes.items():
            if name in stack.instances and code != 0:
                unclean.append(f"{name} exited {code} on SIGTERM (docs/design.md: a drain ends "
                               f"with 0); its log ends:\n{tail(stack.instances[name].log_path)}")
        stack.remove_workdir()
    # Every instance still running at the end must drain and exit 0: under the sanitizer build
    # this also catches a crash or a sanitizer report in any scenario.
    assert not unclean, "\n".join(unclean)


@pytest.fixture
def make_redis():
    """make_redis(**kwargs) starts a RedisServer; every one is killed and reaped at the end."""
    servers = []

    def make(**kwargs):
        server = RedisServer(**kwargs)
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.close()
