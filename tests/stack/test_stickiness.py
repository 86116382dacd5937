"""Scenario 3: clients with a cookie jar stay on one instance, so their in-memory session does."""

import json

from tests.harness import load
from tests.harness.stack import ONE_ADDRESS_CROWD

CLIENTS = 50
REQUESTS_PER_CLIENT = 20


def session_request(url):
    def make(client, number):
        body = json.dumps({"clientId": client.name, "requestNum": number + 1}).encode()
        return load.Request("POST", url, body, ("Content-Type: application/json",))

    return make


def test_clients_stay_on_one_instance(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    cookie = stack.variables["tandem_lb_cookie_name"]
    clients = [load.Client(name=f"client-{n}") for n in range(CLIENTS)]
    try:
        load.run_clients(clients, session_request(stack.url("/api/session")),
                         REQUESTS_PER_CLIENT)
        per_instance = {instance_id: 0 for instance_id in stack.instances}
        problems = []
        for client in clients:
            outcomes = client.outcomes
            instances = {o.instance for o in outcomes}
            counts = [o.json()["requestCount"] if o.ok else None for o in outcomes]
            jar = client.cookies()
            if len(outcomes) != REQUESTS_PER_CLIENT or not all(o.ok for o in outcomes):
                problems.append(f"{client.name}: failures {[o.status for o in outcomes]}")
            elif len(instances) != 1:
                problems.append(f"{client.name}: moved between {sorted(instances)}")
            elif counts[-1] != REQUESTS_PER_CLIENT:
                problems.append(f"{client.name}: requestCount went {counts}")
            elif jar.get(cookie) != outcomes[0].instance:
                problems.append(f"{client.name}: cookie {jar.get(cookie)!r} on "
                                f"{outcomes[0].instance}")
            else:
                per_instance[outcomes[0].instance] += 1
        report(f"{CLIENTS} clients x {REQUESTS_PER_CLIENT} POST /api/session: "
               f"{CLIENTS - len(problems)} stayed on one instance with requestCount "
               f"{REQUESTS_PER_CLIENT}; clients per instance {per_instance}")
        assert not problems, "\n".join(problems)
    finally:
        for client in clients:
            client.close()
