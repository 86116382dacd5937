"""Renders haproxy/haproxy.cfg.j2 the way Ansible does, and validates the result with haproxy -c.

The values are haproxy/defaults.yml (the same defaults the Ansible role uses) updated with the
caller's overrides; an override of a variable that has no default is refused, so a typo cannot
silently render the default instead. The configuration names errorfiles (HAProxy's own answers,
haproxy/errorfile.http.j2): render_errorfiles() writes them where tandem_lb_errorfiles_dir says,
as the tandem_lb role does, and haproxy -c needs them there.
"""

import os
import pathlib
import subprocess

import jinja2
import yaml  # python3-yaml: a dependency of Debian's ansible-core, which the tests install.

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
HAPROXY_DIR = REPO_ROOT / "haproxy"
TEMPLATE_NAME = "haproxy.cfg.j2"
ERRORFILE_TEMPLATE_NAME = "errorfile.http.j2"
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


def _environment():
    # Ansible's template module: trim_blocks on, lstrip_blocks off, undefined variables an error.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(HAPROXY_DIR)), trim_blocks=True,
        lstrip_blocks=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)


def render(overrides=None):
    """The configuration text for defaults updated with overrides."""
    return _environment().get_template(TEMPLATE_NAME).render(**variables(overrides))


def render_errorfile(status, overrides=None):
    """The errorfile text of one status of tandem_lb_error_messages."""
    return _environment().get_template(ERRORFILE_TEMPLATE_NAME).render(
        **variables(overrides), tandem_lb_error_status=status)


def render_errorfiles(overrides=None):
    """Writes one <status>.http per status of tandem_lb_error_messages into
    tandem_lb_errorfiles_dir (created if missing); returns {status: path}."""
    values = variables(overrides)
    directory = pathlib.Path(values["tandem_lb_errorfiles_dir"])
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for status in values["tandem_lb_error_messages"]:
        paths[status] = directory / f"{status}.http"
        paths[status].write_text(render_errorfile(status, overrides))
    return paths


def validate(path):
    """Runs `haproxy -c -f path`; returns its output, raises ValueError with it if invalid."""
    result = subprocess.run(["haproxy", "-c", "-f", str(path)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=30, check=False)
    if result.returncode != 0:
        raise ValueError(f"haproxy -c rejects {path}:\n{result.stdout}")
    return result.stdout


def find_binary(name, explicit, candidates, error, hint):
    """The built binary `name`: `explicit` (a path given by the caller or an environment
    variable), which must then be executable (a wrong path is an error, never a silent fall-back
    to another build), else the first of `candidates` (relative to the repository) that is.
    Raises error(message) otherwise; `hint` says how to name one."""
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise error(f"{name} binary {explicit} does not exist or is not executable")
        return os.path.abspath(explicit)
    for candidate in candidates:
        path = REPO_ROOT / candidate
        if os.access(path, os.X_OK):
            return str(path)
    raise error(f"no {name} binary: {hint} (looked in {', '.join(candidates)})")
