"""The figures a scaling run is judged by, from its phases: the ratios HAProxy + 2 ÷ HAProxy + 1
on the CPU-bound route against the targets, the ceiling the machine's CPUs allow, and what the
HAProxy hop costs on the cheap and session routes."""

import os

from .measured import P99_RATIO_MAX, RPS_RATIO_MIN


def find(phases, route, config):
    for phase in phases:
        if phase["route"] == route and phase["config"] == config:
            return phase
    return None


def verdict(ok, valid):
    if not valid:
        return "not judged (errors counted)"
    return "PASS" if ok else "MISS"


def cpu_ceiling(total_us_per_request, base_rps, rps, cpus=None):
    """The ceiling the machine's CPUs put on a CPU-bound route: every CPU busy at the CPU one
    request costs in all (the instances, HAProxy, the load generator), measured in the run with
    more instances (rps). ceiling_ratio is that ceiling over the run with fewer (base_rps): the
    most the added instances could have bought; machine_used how much of the ceiling rps reached.
    When rps is close to the ceiling, what the added instances did not bring went to HAProxy and
    the load generator on the same cores, not to idling. Also used by tests/multihost/."""
    cpus = cpus or os.cpu_count() or 1
    ceiling = cpus * 1e6 / total_us_per_request
    return {
        "total_cpu_us_per_request": round(total_us_per_request, 1),
        "ceiling_rps": round(ceiling, 1),
        "ceiling_ratio": round(ceiling / base_rps, 3),
        "machine_used": round(rps / ceiling, 3),
    }


def figures(phases, balance_of):
    """The ratios and per-request costs the report judges; balance_of is meta["balance"]."""
    out = {"cpu_bound": {}, "cheap": {}, "session": {}}
    one = find(phases, "load-test", "haproxy-1")
    for config, balance in (("haproxy-2", balance_of["deployed"]),
                            ("haproxy-2-alt", balance_of["alternative"])):
        two = find(phases, "load-test", config)
        if not one or not two:
            continue
        valid = not one["problems"] and not two["problems"]
        # Judged as printed, to three decimals, so that "1.850" never reads as a MISS.
        rps_ratio = round(two["rps"] / one["rps"], 3) if one["rps"] else 0.0
        p99_ratio = (round(two["latency_ms"]["p99"] / one["latency_ms"]["p99"], 3)
                     if one["latency_ms"]["p99"] else float("inf"))
        out["cpu_bound"][balance] = {
            "rps_ratio": round(rps_ratio, 3), "p99_ratio": round(p99_ratio, 3),
            "rps_target_min": RPS_RATIO_MIN, "p99_target_max": P99_RATIO_MAX,
            "rps_verdict": verdict(rps_ratio >= RPS_RATIO_MIN, valid),
            "p99_verdict": verdict(p99_ratio <= P99_RATIO_MAX, valid),
            "split": two["served"],
            "cpu_s": two["cpu_s"],
        }
        # What the machine's CPUs allow, measured with two instances (cpu_ceiling()).
        total_us = two["cpu_us_per_request"]["total"]
        if total_us and one["rps"]:
            out["cpu_bound"][balance].update(cpu_ceiling(total_us, one["rps"], two["rps"]))
    for key, route in (("cheap", "whoami"), ("session", "session")):
        direct, via = find(phases, route, "direct"), find(phases, route, "haproxy-1")
        if not direct or not via:
            continue
        two = find(phases, route, "haproxy-2")
        entry = {
            "haproxy_us_per_request": via["cpu_us_per_request"]["haproxy"],
            "rps_direct_over_haproxy": round(direct["rps"] / via["rps"], 3) if via["rps"] else None,
            "p50_added_ms": round(via["latency_ms"]["p50"] - direct["latency_ms"]["p50"], 3),
            "total_cpu_us_per_request_direct": direct["cpu_us_per_request"]["total"],
            "total_cpu_us_per_request_haproxy": via["cpu_us_per_request"]["total"],
        }
        if entry["total_cpu_us_per_request_direct"] and entry["total_cpu_us_per_request_haproxy"]:
            entry["hop_total_cpu_us_per_request"] = (entry["total_cpu_us_per_request_haproxy"]
                                                     - entry["total_cpu_us_per_request_direct"])
        if two:
            entry["haproxy_us_per_request_2"] = two["cpu_us_per_request"]["haproxy"]
            entry["rps_2_over_1"] = round(two["rps"] / via["rps"], 3) if via["rps"] else None
        out[key] = entry
    load_one = find(phases, "load-test", "haproxy-1")
    if load_one:
        out["cpu_bound"]["haproxy_us_per_request"] = load_one["cpu_us_per_request"]["haproxy"]
    load_direct = find(phases, "load-test", "direct")
    if load_direct:
        out["cpu_bound"]["instance_us_per_request_direct"] = (
            load_direct["cpu_us_per_request"]["instances"])
    return out
