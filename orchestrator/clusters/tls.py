"""Per-cluster TLS material for Dask: a certificate authority, one certificate per node and one for the client.

Every Dask connection of a cluster (client, scheduler, workers, nannies) is mutually authenticated by
certificates signed by the cluster's own CA, whose key never leaves the operator's machine.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.atomic import write_atomically

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
CLIENT_NAME = "client"
_VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class TlsFiles:
    """Paths of one party's TLS material."""

    ca: Path
    cert: Path
    key: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dataops"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((directory / CA_FILE).read_bytes())
    key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
    return cert, key


def ensure_ca(directory: Path, cluster_name: str) -> Path:
    """Create the cluster's certificate authority in ``directory`` unless it already exists.

    Args:
        directory: The cluster's private TLS directory (created with mode 0700).
        cluster_name: Name of the cluster, written into the CA's subject.

    Returns:
        Path of the CA certificate.
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (directory / CA_FILE).exists() and (directory / CA_KEY_FILE).exists():
        return directory / CA_FILE
    key = _new_key()
    now = dt.datetime.now(dt.timezone.utc)
    name = _name(f"dataops cluster {cluster_name} CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    write_atomically(directory / CA_KEY_FILE, _key_bytes(key), 0o600)
    write_atomically(directory / CA_FILE, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return directory / CA_FILE


def issue_certificate(directory: Path, name: str, addresses: list[str] = ()) -> TlsFiles:
    """Issue (or keep) a certificate signed by the cluster's CA, valid as both TLS server and client.

    Args:
        directory: The cluster's TLS directory holding the CA made by :func:`ensure_ca`.
        name: Node or client name; the files are ``<name>.pem`` and ``<name>.key``.
        addresses: IP addresses written into the certificate's subject alternative names.

    Returns:
        The CA, certificate and key paths.
    """
    files = TlsFiles(ca=directory / CA_FILE, cert=directory / f"{name}.pem", key=directory / f"{name}.key")
    if files.cert.exists() and files.key.exists() and _covers(files.cert, addresses):
        return files
    ca_cert, ca_key = _load_ca(directory)
    key = _new_key()
    now = dt.datetime.now(dt.timezone.utc)
    alt_names: list[x509.GeneralName] = [x509.DNSName(name)]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    write_atomically(files.key, _key_bytes(key), 0o600)
    write_atomically(files.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return files


def _covers(cert_path: Path, addresses) -> bool:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return not addresses
    present = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    return set(addresses) <= present


def dask_security(files: TlsFiles):
    """Return a ``distributed.Security`` for a client holding ``files``, with encryption required.

    Args:
        files: The client's TLS material.

    Returns:
        A ``distributed.security.Security`` instance.
    """
    from distributed.security import Security

    return Security(
        tls_ca_file=str(files.ca),
        tls_client_cert=str(files.cert),
        tls_client_key=str(files.key),
        require_encryption=True,
    )
