#!/usr/bin/env bash
# The deployed benchmark: the stack ./up makes (a systemd guest, Ansible's deployment, Debian's
# HAProxy and journald) measured with wrk, direct and through :80 (bench/README.md). The runner is
# the package bench/deployed/; this wrapper only picks Debian's python3, which has the modules the
# harness needs (python3-jinja2, python3-yaml), where a python3 earlier on PATH may lack them.
#   bench/deployed.sh --help
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
if [ ! -x "$python" ]; then
  python=$(command -v python3) || { echo "deployed: python3 is missing" >&2; exit 77; }
fi
exec "$python" -B "$here/deployed" "$@"
