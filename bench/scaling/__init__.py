"""Scaling benchmark: what a second instance buys, and what each layer costs.

Brings up the local stack (tests/harness: HAProxy rendered from haproxy/haproxy.cfg.j2 in front of
two tandem-server instances, all on loopback) and loads it with wrk, one phase at a time:

  route      GET /api/whoami (cheap), GET /api/load-test?iterations=N (CPU-bound, N calibrated
             so that one request costs about 1 ms of CPU here), POST /api/session (cookies kept)
  config     direct to one instance · HAProxy + 1 instance · HAProxy + 2 instances (with the
             deployed configuration, haproxy/defaults.yml) · for the CPU-bound route also
             HAProxy + 2 with the other balance algorithm (leastconn, roundrobin being deployed)

Each phase records requests/s, latency p50/p95/p99, errors, and the CPU seconds each process
used (HAProxy, each instance, wrk, and the rest of the machine). The results go to
bench/results/<UTC time>/ as run.json, report.md and chart.png; the last line printed names the
folder. See bench/README.md for what each figure means. Run through bench/scaling.sh.

The modules, in the order a run uses them:
  measured   the routes, the configurations, the targets: what is measured and judged
  cli        the options (--set checked against haproxy/defaults.yml), the tools, main()
  phases     bringing the stacks up, calibrating, checking the answers, running the phases
  figures    the ratios, the ceiling of the machine's CPUs, the verdicts
  report     the summary printed, report.md, chart.png, the results folder

Exit status: 0 every phase ran without errors (targets may be missed), 1 something broke or a phase
counted errors, 2 bad usage, 77 a required tool is missing, 130 interrupted.
"""
