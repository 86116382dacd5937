"""The Debian package as built by `cpack -G DEB`: lintian reports no error, and the package holds
what an installation needs where Debian expects it. (Installing it and running it: test_drills.py.)"""

import shutil
import subprocess

import pytest

from tests.system.deployment import expected_version, package_path

EXPECTED_FILES = {
    "./usr/bin/tandem-server",
    "./lib/systemd/system/tandem@.service",
    "./lib/systemd/system/tandem.target",
    "./lib/systemd/system/haproxy.service.d/tandem.conf",
    "./usr/libexec/tandem/haproxy-server-state",
    "./etc/tandem/3001.env",
    "./etc/tandem/3002.env",
    "./etc/tandem/tandemctl.conf",
    "./usr/bin/tandemctl",
    "./usr/share/man/man1/tandemctl.1.gz",
    "./usr/share/bash-completion/completions/tandemctl",
    "./usr/share/tandem/haproxy/haproxy.cfg.j2",
    "./usr/share/tandem/haproxy/errorfile.http.j2",
    "./usr/share/tandem/haproxy/defaults.yml",
    "./usr/share/tandem/haproxy/README.md",
    "./usr/share/tandem/README.md",
    "./usr/share/doc/tandem/copyright",
    "./usr/share/doc/tandem/changelog.gz",
    "./usr/share/man/man1/tandem-server.1.gz",
}


def dpkg_deb(*args):
    return subprocess.run(["dpkg-deb"] + list(args), check=True, text=True,
                          stdout=subprocess.PIPE).stdout


def test_lintian_reports_no_error(report):
    if shutil.which("lintian") is None:
        pytest.fail("lintian is not installed (packaging/install-deps.sh test)")
    deb = package_path()
    result = subprocess.run(["lintian", "--pedantic", "--display-info", "--show-overrides",
                             "--fail-on", "error", str(deb)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    tags = [line for line in result.stdout.splitlines() if line[:2] in ("E:", "W:", "I:",
                                                                         "P:", "O:")]
    errors = [line for line in tags if line.startswith("E:")]
    warnings = [line for line in tags if line.startswith("W:")]
    report(f"lintian {deb.name}: {len(errors)} errors, {len(warnings)} warnings, "
           f"{len(tags) - len(errors) - len(warnings)} info/pedantic/overridden")
    for line in tags:
        report(f"  {line}")
    assert result.returncode == 0 and not errors, result.stdout + result.stderr


def test_package_contents_and_control(report):
    deb = package_path()
    version = expected_version()
    fields = {name: dpkg_deb("-f", str(deb), name).strip()
              for name in ("Package", "Version", "Architecture", "Depends", "Recommends")}
    files = {line.split()[-1] for line in dpkg_deb("-c", str(deb)).splitlines()}
    conffiles = dpkg_deb("-I", str(deb), "conffiles").split()
    scripts = {name: dpkg_deb("-I", str(deb), name) for name in ("postinst", "prerm", "postrm")}
    report(f"{deb.name}: {fields}")
    report(f"conffiles: {conffiles}")

    assert deb.name == f"tandem_{version}_{fields['Architecture']}.deb"
    assert fields["Package"] == "tandem" and fields["Version"] == version
    # Libraries found by dpkg-shlibdeps in the binary, and what the units and scripts need.
    for dependency in ("libuv1", "libjsoncpp25", "libsystemd0", "libc6", "systemd (>=",
                       "init-system-helpers", "socat"):
        assert dependency in fields["Depends"], fields["Depends"]
    assert not EXPECTED_FILES - files, sorted(EXPECTED_FILES - files)
    assert sorted(conffiles) == ["/etc/tandem/3001.env", "/etc/tandem/3002.env",
                                 "/etc/tandem/tandemctl.conf"]
    assert "daemon-reload" in scripts["postinst"] and "daemon-reload" in scripts["postrm"]
    assert "stop tandem.target" in scripts["prerm"]
