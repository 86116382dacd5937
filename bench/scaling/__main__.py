"""`python3 bench/scaling ARGS` (what bench/scaling.sh runs): puts the repository on the path in
place of this folder, so that `bench.scaling` and `tests.harness` import as packages."""

import pathlib
import sys

sys.dont_write_bytecode = True
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[2])

from bench.scaling.cli import main  # noqa: E402

sys.exit(main())
