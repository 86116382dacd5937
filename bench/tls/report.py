"""What a TLS run leaves: the table it prints, report.md, and the results folder that holds it
with run.json."""

import datetime
import json
import pathlib

from bench.scaling.measured import HERE
from bench.scaling.report import machine_lines

from .measured import OTHERS_WARN_CPUS, ROUND_CLIENTS, STREAMS

COLUMNS = ("phase", "requests", "req/s", "failed", "TLS handshakes (resumed)",
           "HAProxy µs/req", "× plain", "instances µs/req", "h2load µs/req")


def fmt(value, spec=".1f", none="–"):
    return none if value is None else format(value, spec)


def rows(phases):
    """One row per phase, the cells as text, in COLUMNS' order."""
    out = []
    for number, p in enumerate(phases, 1):
        per, seen = p["cpu_us_per_request"], p["haproxy_counted"]
        failed = str(p["failed"]) + (" INVALID" if p["problems"] else "")
        tls = (f"{seen['tls_handshakes']:,} ({seen['resumed']:,})" if p["scheme"] == "https"
               else "–")
        out.append((f"{number}. {p['title']}", f"{p['requests']:,}", fmt(p["rps"], ",.0f"),
                    failed, tls, fmt(per["haproxy"]), fmt(p["haproxy_ratio"], ".2f"),
                    fmt(per["instances"]), fmt(per["h2load"])))
    return out


def print_table(phases):
    table = [COLUMNS] + rows(phases)
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    print("== result (CPU µs per request; × plain: HAProxy's against phase 1's)")
    for index, row in enumerate(table):
        cells = [cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i])
                 for i, cell in enumerate(row)]
        print("   " + "  ".join(cells))
        if index == 0:
            print("   " + "  ".join("-" * w for w in widths))
    noisy = [p for p in phases if (p["others_cpus"] or 0) >= OTHERS_WARN_CPUS]
    if noisy:
        print(f"   warning: other work kept >= {OTHERS_WARN_CPUS} CPU busy during "
              + ", ".join(p["key"] for p in noisy) + ": noisy figures, re-run at a quieter moment")
    invalid = [p for p in phases if p["problems"]]
    if invalid:
        print("   INVALID phases: " + "; ".join(f"{p['key']}: {', '.join(p['problems'])}"
                                               for p in invalid))


def markdown(report):
    meta, phases = report["meta"], report["phases"]
    tls = next((p["tls"] for p in phases if p["tls"]), {})
    lines = [
        f"# tandem TLS benchmark, {meta['date']}",
        "",
        *machine_lines(meta),
        f"- {meta['haproxy_version']} with {meta['haproxy_openssl']}, worker threads "
        f"{meta['haproxy_threads']}; as deployed (haproxy/defaults.yml) but for the per-source "
        "limits, off; self-signed ECDSA P-256 certificate",
        f"- {meta['h2load_version']}, one thread; negotiated {tls.get('protocol', '?')}, "
        f"{tls.get('cipher', '?')}, key exchange {tls.get('temp_key', '?')}",
        f"- command: `{meta['command']}`" + ("; SMOKE RUN, figures meaningless"
                                             if meta["smoke"] else ""),
        "",
        "## Phases",
        "",
        f"GET /api/whoami through HAProxy. Keep-alive phases: {meta['requests']:,} requests over "
        f"{meta['connections']} connections (HTTP/2: {STREAMS} streams in flight on each). New "
        f"connection per request: {meta['new_connections']:,} requests; full handshakes in "
        f"rounds of h2load with up to {ROUND_CLIENTS} clients doing one request each (a new "
        "h2load has no session to resume), resumed ones with `Connection: close` from "
        f"{meta['connections']} clients (h2load offers each reconnect its last session). CPU µs "
        "per request: utime + stime from /proc over the phase ÷ requests; req/s: requests ÷ "
        "h2load's own time (the rounds' times added up). TLS handshakes and resumed: HAProxy's "
        "own counters (show info).",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|---|" + "--:|" * (len(COLUMNS) - 1),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows(phases)]
    lines += ["", "| phase | protocol | HAProxy connections | CPU s: HAProxy / app-1 / app-2 / "
              "h2load | others CPUs | mean request ms |", "|---|---|--:|---|--:|--:|"]
    for p in phases:
        cpu = p["cpu_s"]
        lines.append(f"| {p['key']} | {p['protocol']} | {p['haproxy_counted']['connections']:,} "
                     f"| {cpu['haproxy']:.2f} / {cpu.get('app-1', 0):.2f} / "
                     f"{cpu.get('app-2', 0):.2f} / {cpu['h2load']:.2f} | "
                     f"{fmt(p['others_cpus'], '.2f')} | {fmt(p['request_mean_ms'], '.3f')} |")
    lines.append("")
    noisy = [p for p in phases if (p["others_cpus"] or 0) >= OTHERS_WARN_CPUS]
    if noisy:
        lines.append(f"**Noisy:** other work kept ≥ {OTHERS_WARN_CPUS} CPU busy during "
                     + ", ".join(p["key"] for p in noisy) + "; re-run at a quieter moment.")
    else:
        lines.append(f"Quiet: other work stayed below {OTHERS_WARN_CPUS} CPU in every phase.")
    invalid = [p for p in phases if p["problems"]]
    if invalid:
        lines += ["", "**INVALID**: " + "; ".join(f"{p['key']}: {', '.join(p['problems'])}"
                                                  for p in invalid)]
    return "\n".join(lines) + "\n"


def results_folder(args):
    """--out, else bench/results/tls/<UTC time>/ (with --smoke: bench/results/tls/smoke/,
    replaced by each smoke run)."""
    if args.out:
        return pathlib.Path(args.out).resolve()
    base = HERE / "results" / "tls"
    if args.smoke:
        return base / "smoke"
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%SZ")
    folder, suffix = base / stamp, 1
    while folder.exists():
        suffix += 1
        folder = base / f"{stamp}-{suffix}"
    return folder


def write_results(args, report):
    folder = results_folder(args)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (folder / "report.md").write_text(markdown(report), encoding="utf-8")
    return folder
