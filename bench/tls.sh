#!/usr/bin/env bash
# The TLS benchmark: what TLS and HTTP/2 cost HAProxy at tandem's front, with h2load against a
# local stack (bench/README.md). The runner is the package bench/tls/; this wrapper only picks the
# python3 to run it with: Debian's, because the local-stack harness it uses (tests/harness) needs
# python3-jinja2 and python3-yaml, which a python3 earlier on PATH (pyenv, a venv) may lack.
#   bench/tls.sh --help
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=/usr/bin/python3
if [ ! -x "$python" ]; then
  python=$(command -v python3) || { echo "tls: python3 is missing" >&2; exit 77; }
fi
PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -B -m bench.tls "$@"
