"""One instance of a local stack taken out of rotation, restarted and put back, the way
ansible/rolling-restart.yml does it on a deployment (roles/tandem_app/tasks/roll_instance.yml)."""

import signal
import time

from . import load

DRAIN_SECONDS = 10  # tandem_app_roll_drain_seconds: longest wait for no session on it


def roll_instance(stack, instance_id):
    """One instance out of rotation, restarted and back, the way ansible/rolling-restart.yml
    does it (roles/tandem_app/tasks/roll_instance.yml) but on the harness's stack: another
    server UP; drain; wait (bounded) until HAProxy counts no session on it; maint; SIGTERM (it
    drains and exits 0); start; its own /health 200; ready; HAProxy's checks pass (UP, not the
    "UP 1/2" it shows at once out of maint); a request with its cookie is answered by it."""
    api, backend = stack.api, stack.backend
    others = {s: status for s, status in api.statuses(backend).items() if s != instance_id}
    assert "UP" in others.values(), f"no other server UP before taking {instance_id} out: {others}"
    api.set_server_state(backend, instance_id, "drain")
    deadline = time.monotonic() + DRAIN_SECONDS
    while int(api.server_stat(backend, instance_id)["scur"] or 0) > 0 \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    api.set_server_state(backend, instance_id, "maint")
    stack.stop_instance(instance_id, signal.SIGTERM)
    exit_code = stack.wait_instance_exit(instance_id, timeout=10.0)
    stack.start_instance(instance_id, wait=True)
    api.set_server_state(backend, instance_id, "ready")
    stack.wait_status(instance_id, lambda status: status == "UP", timeout=5.0)
    cookie = f"Cookie: {stack.variables['tandem_lb_cookie_name']}={instance_id}"
    answer = load.parallel([load.Request("GET", stack.url("/api/whoami"), None, (cookie,))])[0]
    assert answer.ok and answer.instance == instance_id, answer
    return exit_code
