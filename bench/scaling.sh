#!/usr/bin/env bash
# The scaling benchmark: one instance direct, HAProxy + 1, HAProxy + 2, on a cheap and a CPU-bound
# route (bench/README.md). The runner is the package bench/scaling/; this wrapper only picks the
# python3 to run it with: Debian's, because the local-stack harness it uses (tests/harness) needs
# python3-jinja2 and python3-yaml, which a python3 earlier on PATH (pyenv, a venv) may lack.
#   bench/scaling.sh --help
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
python=/usr/bin/python3
if [ ! -x "$python" ]; then
  python=$(command -v python3) || { echo "scaling: python3 is missing" >&2; exit 77; }
fi
exec "$python" -B "$here/scaling" "$@"
