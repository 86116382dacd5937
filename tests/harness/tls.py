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


def self_signed_pem(common_name, names, days=30):
    """A self-signed ECDSA P-256 certificate followed by its key, as one PEM text. names: the
    subjectAltName entries (host names or IP addresses)."""
    alt = ",".join(f"IP:{n}" if _is_ip(n) else f"DNS:{n}" for n in names)
    with tempfile.TemporaryDirectory(prefix="tandem-tls-") as scratch:
        key = pathlib.Path(scratch) / "key.pem"
        cert = pathlib.Path(scratch) / "cert.pem"
        result = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", str(days),
             "-subj", f"/CN={common_name}", "-addext", f"subjectAltName={alt}",
             "-keyout", str(key), "-out", str(cert)],
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, check=False)
        if result.returncode != 0:
            raise TlsError(f"openssl req failed: {result.stderr.strip()}")
        return cert.read_text() + key.read_text()


def write_self_signed(directory, names=("localhost", "127.0.0.1"), days=30):
    """Writes <first name>.pem and the crt-list naming it into directory, and the certificate
    alone as ca.pem (what a client that verifies trusts); returns the PEM's path."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pem = directory / f"{names[0]}.pem"
    text = self_signed_pem(names[0], names, days)
    write_pem(pem, text)
    (directory / "ca.pem").write_text(certificate_part(text))
    (directory / CRT_LIST_NAME).write_text(f"{pem}\n")
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


def _is_ip(name):
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False
