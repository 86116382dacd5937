"""`python3 bench/deployed ARGS` (what bench/deployed.sh runs): puts the repository on the path in
place of this folder, so that `bench.deployed` and `tests.harness` import as packages."""

import pathlib
import sys

sys.dont_write_bytecode = True
sys.path[0] = str(pathlib.Path(__file__).resolve().parents[2])

from bench.deployed.cli import main  # noqa: E402

sys.exit(main())
