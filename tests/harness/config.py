"""Renders haproxy/haproxy.cfg.j2 the way Ansible does, and validates the result with haproxy -c.

The values are haproxy/defaults.yml (the same defaults the Ansible role uses) updated with the
caller's overrides; an override of a variable that has no default is refused, so a typo cannot
silently render the default instead.
"""

import pathlib
import subprocess

import jinja2
import yaml  # python3-yaml: a dependency of Debian's ansible-core, which the tests install.

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
HAPROXY_DIR = REPO_ROOT / "haproxy"
TEMPLATE_NAME = "haproxy.cfg.j2"
DEFAULTS_PATH = HAPROXY_DIR / "defaults.yml"


def load_defaults():
    with open(DEFAULTS_PATH, encoding="utf-8") as stream:
        defaults = yaml.safe_load(stream)
    if not isinstance(defaults, dict):
        raise ValueError(f"{DEFAULTS_PATH} is not a YAML dictionary")
    return defaults


def variables(overrides=None):
    """The defaults updated with overrides (each of which must be a known variable)."""
    values = load_defaults()
    unknown = sorted(set(overrides or {}) - set(values))
    if unknown:
        raise KeyError(f"not variables of {TEMPLATE_NAME} (see {DEFAULTS_PATH.name}): {unknown}")
    values.update(overrides or {})
    return values


def render(overrides=None):
    """The configuration text for defaults updated with overrides."""
    # Ansible's template module: trim_blocks on, lstrip_blocks off, undefined variables an error.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HAPROXY_DIR)), trim_blocks=True,
        lstrip_blocks=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    return environment.get_template(TEMPLATE_NAME).render(**variables(overrides))


def validate(path):
    """Runs `haproxy -c -f path`; returns its output, raises ValueError with it if invalid."""
    result = subprocess.run(["haproxy", "-c", "-f", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=30, check=False)
    if result.returncode != 0:
        raise ValueError(f"haproxy -c rejects {path}:\n{result.stdout}")
    return result.stdout
