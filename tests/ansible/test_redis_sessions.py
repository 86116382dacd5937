"""Issue "Shared sessions in Redis", scenario 4: the rolling restart of the Ansible issue
(ansible/rolling-restart.yml: drain, maint, restart, /health, ready, one instance at a time), with
the sessions in Redis: zero failed requests and no session lost.

deploy.yml with the redis role switched on (redis_enabled: true: Debian's redis-server in the
guest, on loopback, and every instance's TANDEM_SESSION_STORE pointing at it), into the `target`
guest (conftest.py); run again, it changes nothing. Then rolling-restart.yml runs while sticky clients (each with its own cookie
jar) send POST /api/session, 100 requests/s in all. Each client is moved to the other instance
when its own is restarted, and must see its count go on 1, 2, 3, ... without a gap, a repeat or a
reset, up to the count Redis holds. (With the sessions in memory every client starts again at 1
on the other instance: tests/stack/test_redis_sessions.py runs the same roll on the harness's
stack in a few seconds.)
"""

import json
import time

from tests.harness import load
from tests.harness.redis import check_sessions, session_count
from tests.harness.stack import free_ports

LB_URL = "http://127.0.0.1:80"  # the local inventory's HAProxy (tandem_lb_port)
INSTANCES = {"app-1": 3001, "app-2": 3002}  # ansible/inventories/local/group_vars/all.yml
UNITS = tuple(f"tandem@{port}.service" for port in INSTANCES.values())
CLIENTS = 20
ROUND_PAUSE = 0.2  # seconds between two rounds of one POST per client: 100 requests/s in all


def session_post(client, number):
    body = json.dumps({"clientId": client.name, "requestNum": number + 1}).encode()
    return load.Request("POST", f"{LB_URL}/api/session", body, ("Content-Type: application/json",))


def test_rolling_restart_with_redis_sessions_loses_nothing(target, report):
    # A free port rather than 6379: the guest's ports are this machine's.
    redis_port = free_ports(1)[0]
    extra_vars = {"redis_enabled": True, "redis_port": redis_port}
    deployed = target.playbook("deploy.yml", extra_vars=extra_vars)
    assert deployed.ok, f"deploy.yml exited {deployed.returncode}:\n{deployed.tail(80)}"
    guest = target.guest
    assert guest.show("redis-server.service", "ActiveState")["ActiveState"] == "active"
    for port in INSTANCES.values():
        env = guest.run(["cat", f"/etc/tandem/{port}.env"]).stdout
        assert f"TANDEM_SESSION_STORE=redis://127.0.0.1:{redis_port}/0\n" in env, env
    again = target.playbook("deploy.yml", extra_vars=extra_vars)
    assert again.ok and again.recap["changed"] == 0, again.tail(80)

    pids = {unit: int(guest.show(unit, "MainPID")["MainPID"]) for unit in UNITS}
    clients = [load.Client(name=f"sticky-{n}") for n in range(CLIENTS)]
    try:
        with load.Rounds(clients, session_post, ROUND_PAUSE) as rounds:
            time.sleep(2.0)  # Every client has its session and its instance before the roll.
            rolled = target.playbook("rolling-restart.yml", extra_vars=extra_vars)
            time.sleep(2.0)  # And goes on for a while on the restarted instances.
            rounds.stop()
        restarted = {unit: int(guest.show(unit, "MainPID")["MainPID"]) for unit in UNITS}

        outcomes = [o for client in clients for o in client.outcomes]
        failed = [o for o in outcomes if not o.ok]
        problems, moved = check_sessions(
            clients, lambda session_id: session_count(redis_port, session_id))
        report(f"rolling-restart.yml (exit {rolled.returncode}) took {rolled.seconds:.1f} s "
               f"under {len(outcomes)} POST /api/session from {CLIENTS} sticky clients "
               f"({rounds.rounds} rounds): "
               f"{len(failed)} failed; {moved} clients moved to the other instance and went "
               f"on; {CLIENTS - len(problems)} of {CLIENTS} with every count exactly once and "
               f"equal to Redis's; main pids {pids} -> {restarted}")
        for failure in failed[:5]:
            report(f"  failed: status {failure.status} {failure.error or failure.body[:100]!r}")
        assert rolled.ok, f"rolling-restart.yml exited {rolled.returncode}:\n{rolled.tail(80)}"
        assert all(restarted[unit] not in (0, pids[unit]) for unit in UNITS), restarted
        assert not failed
        assert not problems, "\n".join(problems)
        assert moved == CLIENTS, "every client's instance was restarted under it"
    finally:
        for client in clients:
            client.close()
