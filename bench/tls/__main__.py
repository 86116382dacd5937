"""`python3 -m bench.tls ARGS` from the repository (what bench/tls.sh runs), or `python3
bench/tls ARGS`: the repository goes first on the path, so that `bench.tls` and `tests.harness`
import as packages whichever way it was started."""

import pathlib
import sys

sys.dont_write_bytecode = True
REPO = str(pathlib.Path(__file__).resolve().parents[2])
if __package__:
    sys.path.insert(0, REPO)
else:
    sys.path[0] = REPO  # Started as a folder: its own path would shadow the repository's.

from bench.tls.cli import main  # noqa: E402

sys.exit(main())
