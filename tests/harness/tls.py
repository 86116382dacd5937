"""Certificates for a local stack's HTTPS listener, made with the openssl command.

HAProxy reads the certificates the template names from a crt-list in tandem_lb_tls_dir: one PEM
per name (the certificate, then its key), the first served to clients that name no known host.
write_self_signed() makes such a directory as the tandem_lb role does when an inventory gives no
certificate: ECDSA P-256, self-signed, for the names given.
"""

import ipaddress
import pathlib
import subprocess
import tempfile

CRT_LIST_NAME = "certificates.list"  # haproxy/defaults.yml's tandem_lb_tls_crt_list_name


class TlsError(RuntimeError):
    pass


def self_signed_pem(common_name, names, days=30, rsa=False):
    """A self-signed ECDSA P-256 (or, with rsa, RSA-2048) certificate followed by its key, as one
    PEM text. names: the subjectAltName entries (host names or IP addresses)."""
    alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    key_type = (["-newkey", "rsa:2048"] if rsa
                else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
    with tempfile.TemporaryDirectory(prefix="tandem-tls-") as scratch:
        key = pathlib.Path(scratch) / "key.pem"
        cert = pathlib.Path(scratch) / "cert.pem"
        result = subprocess.run(
            ["openssl", "req", "-x509", *key_type, "-nodes", "-days", str(days),
             "-subj", f"/CN={common_name}", "-addext", f"subjectAltName={alt}",
             "-keyout", str(key), "-out", str(cert)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise TlsError(f"openssl req failed: {result.stderr.strip()}")
        return cert.read_text() + key.read_text()


def write_self_signed(directory, names=("localhost", "127.0.0.1"), days=30, rsa_too=False):
    """Writes <first name>.pem and the crt-list naming it into directory, and the certificate
    alone as ca.pem (what a client that verifies trusts); returns the PEM's path. rsa_too: an
    RSA certificate for the same names as well (<first name>.rsa.pem, second in the list, in
    ca.pem too), which HAProxy serves to clients that take no ECDSA: the RSA suites can then be
    tried."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pem = directory / f"{names[0]}.pem"
    text = self_signed_pem(names[0], names, days)
    write_pem(pem, text)
    listed, trusted = [pem], certificate_part(text)
    if rsa_too:
        rsa = directory / f"{names[0]}.rsa.pem"
        rsa_text = self_signed_pem(names[0], names, days, rsa=True)
        write_pem(rsa, rsa_text)
        listed.append(rsa)
        trusted += certificate_part(rsa_text)
    (directory / "ca.pem").write_text(trusted)
    (directory / CRT_LIST_NAME).write_text("".join(f"{path}\n" for path in listed))
    return pem


def certificate_part(pem_text):
    """The certificate blocks of a PEM text, without its key."""
    blocks = pem_text.split("-----END CERTIFICATE-----")
    return "".join(block[block.index("-----BEGIN CERTIFICATE-----"):]
                   + "-----END CERTIFICATE-----\n"
                   for block in blocks[:-1])


def write_pem(path, text):
    """Writes a certificate and key, readable by their owner only."""
    path = pathlib.Path(path)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def not_after(pem_text):
    """The certificate's notAfter, as openssl prints it."""
    result = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem_text,
                            capture_output=True, text=True, timeout=30, check=True)
    return result.stdout.strip().removeprefix("notAfter=")


def fingerprint(pem_text):
    """The certificate's SHA-256 fingerprint, as openssl prints it (AA:BB:...)."""
    result = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                            input=pem_text, capture_output=True, text=True, timeout=30,
                            check=True)
    return result.stdout.strip().split("=", 1)[1]


def served_fingerprint(port, host="127.0.0.1", server_name="localhost"):
    """The SHA-256 fingerprint of the certificate a TLS listener serves now."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"{host}:{port}",
                             "-servername", server_name], input="", capture_output=True,
                            text=True, timeout=20, check=False)
    return fingerprint(result.stdout)


def curl(*args):
    """curl's output (with -i: the head and the body), run to completion within 10 s; raises
    AssertionError with curl's error if it fails."""
    result = subprocess.run(["curl", "-sS", "--max-time", "10", *args], capture_output=True,
                            text=True, timeout=20, check=False)
    assert result.returncode == 0, f"curl {' '.join(args)}: {result.stderr}"
    return result.stdout


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
