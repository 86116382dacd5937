"""Scenario 1: cookieless clients are spread evenly over the instances."""

import resource

from tests.harness import load
from tests.harness.stack import ONE_ADDRESS_CROWD

REQUESTS = 1000
# Spec: each instance gets 50 % +- 5 %, and the chi-square statistic (1 degree of freedom,
# p = 0.05) stays below 3.841.
SHARE = 0.50
SHARE_TOLERANCE = 0.05
CHI_SQUARE_LIMIT = 3.841


def raise_descriptor_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def chi_square(counts, total):
    expected = total / len(counts)
    return sum((count - expected) ** 2 / expected for count in counts)


def test_parallel_cookieless_requests_split_evenly(make_stack, report):
    stack = make_stack(instances=2, overrides=ONE_ADDRESS_CROWD)
    raise_descriptor_limit(REQUESTS + 256)  # One connection per request, all open at once.
    outcomes = load.parallel([load.Request("GET", stack.url("/api/whoami"))] * REQUESTS)

    failed = [o for o in outcomes if not o.ok]
    assert not failed, f"{len(failed)} failed, first: {failed[0]}"
    counts = {instance_id: 0 for instance_id in stack.instances}
    for outcome in outcomes:
        counts[outcome.instance] += 1
        assert outcome.json()["container"] == outcome.instance
    statistic = chi_square(list(counts.values()), REQUESTS)
    shares = {instance_id: count / REQUESTS for instance_id, count in counts.items()}
    report(f"{REQUESTS} parallel GET /api/whoami: "
           + ", ".join(f"{i} {c} ({shares[i]:.1%})" for i, c in counts.items())
           + f"; chi-square {statistic:.3f}")
    for instance_id, share in shares.items():
        assert abs(share - SHARE) <= SHARE_TOLERANCE, f"{instance_id} got {share:.1%}"
    assert statistic < CHI_SQUARE_LIMIT
