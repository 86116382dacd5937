"""Deployed benchmark: what the front costs per request on the stack as ./up deploys it.

Boots the systemd guest ./up uses (tests/harness/ansible_guest.py), deploys the Debian package into
it with ansible/deploy.yml over SSH, and loads it from this machine with wrk, one phase at a time:

  cheap      GET /api/whoami: direct to app-1 (:3001) · through :80 with app-2 in maintenance
             (one instance) · through :80 with both
  CPU-bound  GET /api/load-test?iterations=N (N calibrated to about 1 ms of CPU) through :80, one
             instance, then both: the balance as deployed, judged on req/s and p99

Each phase records requests/s, latency percentiles, errors, and the CPU time of every process on
the path, read from /proc on this machine (the guest's processes are this machine's): HAProxy
(master and worker), systemd-journald (which receives HAProxy's request log and the instances'),
each instance, the rest of the guest (Prometheus scraping, sshd, ...), wrk, and the rest of the
machine. The results go to bench/results/deployed-<UTC time>/ as run.json, report.md and chart.png;
the last line printed names the folder. bench/README.md explains every figure.

The modules, in the order a run uses them:
  cli       the options (--set checked against the roles' variables), the tools, the package, main()
  guest     the deployment: booting, deploying, finding the guest's processes, maintenance
  phases    calibrating, running the phases, the CPU of every process around each
  report    the figures and verdicts, the summary printed, report.md, chart.png

Exit status: 0 every phase ran without errors (targets may be missed), 1 something broke or a phase
counted errors, 2 bad usage, 77 a required tool is missing, 130 interrupted.
"""
