"""TLS benchmark: what TLS and HTTP/2 cost HAProxy at tandem's front.

Brings up the local stack (tests/harness: HAProxy rendered from haproxy/haproxy.cfg.j2, as
deployed but for the per-source limits, in front of two tandem-server instances, all on loopback;
its HTTPS listener has a self-signed ECDSA P-256 certificate and offers h2 and http/1.1) and
loads GET /api/whoami with h2load, one phase at a time:

  1 HTTP/1.1 plain, keep-alive                        the reference of every ratio
  2 HTTPS/1.1, keep-alive                             TLS's cost per request once connected
  3 HTTPS/1.1, a new connection per request           a full TLS handshake per request
  4 HTTP/2 over TLS, 10 streams per connection        what a browser mostly does
  5 HTTP/1.1 plain, a new connection per request      the TCP part of phase 3
  6 HTTPS/1.1, a new connection, session resumed      what a returning client saves

Each phase records requests, req/s, failed requests (h2load's failed, errored, timed out, and
answers other than 2xx), the protocol ALPN picked, HAProxy's own count of connections, TLS
handshakes and resumed sessions, and the CPU time of HAProxy, of the instances and of h2load, per
request; HAProxy's is also given against phase 1's. A table is printed, and run.json and report.md
go to a results folder (bench/results/tls/<UTC time>/ unless --out says) named on the last line.
See bench/README.md. Run through bench/tls.sh.

The modules, in the order a run uses them:
  measured   the phases, the default counts, the exit statuses
  cli        the options, the tools, main()
  phases     the stack, the answers checked, each phase with its CPU time and HAProxy's counters
  h2load     one h2load run: its command line, its own CPU time, its summary parsed
  report     the table printed, report.md, the results folder

Exit status: 0 every phase ran as meant, 1 something broke or a phase failed requests or did not
negotiate what it measures, 2 bad usage, 77 a required tool is missing, 130 interrupted.
"""
