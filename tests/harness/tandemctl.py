"""tandemctl as the tests run it: the built binary (TANDEM_CTL_BIN, which CTest sets, else the
usual build folders) on a local stack's config folder (Stack.tandemctl_config)."""

import json
import os
import subprocess

from . import config

CTL_BIN_CANDIDATES = ("build-dev/ctl/tandemctl", "build-release/ctl/tandemctl",
                      "build/ctl/tandemctl")


def find_ctl_bin():
    """TANDEM_CTL_BIN (which must then exist), else the first build found; fails loudly."""
    return config.find_binary("tandemctl", os.environ.get("TANDEM_CTL_BIN"),
                              CTL_BIN_CANDIDATES, FileNotFoundError, "set TANDEM_CTL_BIN")


class Tandemctl:
    """Runs tandemctl against one stack: `run(*args)` returns the CompletedProcess (text, stdout
    and stderr apart), `status()` the parsed `status --json` and its exit status."""

    def __init__(self, stack):
        self.binary = find_ctl_bin()
        self.config_dir = stack.tandemctl_config()

    def argv(self, *args):
        return [self.binary, "--config-dir", str(self.config_dir), *map(str, args)]

    def run(self, *args, timeout=120, config_dir=True):
        """tandemctl with these arguments, after --config-dir unless config_dir is False."""
        argv = self.argv(*args) if config_dir else [self.binary, *map(str, args)]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)

    def status(self, interval=0):
        result = self.run("status", "--json", "--interval", interval)
        assert result.returncode in (0, 3), result.stderr
        return json.loads(result.stdout), result.returncode
