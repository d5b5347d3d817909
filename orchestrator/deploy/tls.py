"""Per-endpoint TLS material: a certificate authority and one server certificate per node.

Each node's certificate names the node and every address clients may use to reach it (its fixed IP, its floating
IP when it has one, and the names the endpoint file adds), so ``https://<floating IP>:<port>`` verifies against the
endpoint's CA. The CA's key never leaves the operator's machine; the CA certificate is public and is what clients
(curl ``--cacert``, ``tritonclient.http`` with ``ssl=True``, the project's own readers) verify the endpoint by.
A certificate is issued again when an address or name is missing from it, when it is near its end, or when it was
not signed by the endpoint's current CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from orchestrator.atomic import write_atomically

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca.key"
KEY_MODE = 0o600
CA_VALIDITY = dt.timedelta(days=3650)
SERVER_VALIDITY = dt.timedelta(days=365)
# A deploy this close to a certificate's end issues a new one: an endpoint deployed now and then never expires.
RENEW_BEFORE = dt.timedelta(days=30)
_BACKDATE = dt.timedelta(minutes=5)  # clocks of nodes and clients a little behind the operator's still accept it


@dataclass(frozen=True)
class ServerCertificate:
    """One node's TLS files on the operator's machine: ``<node>.pem`` and ``<node>.key`` beside the CA."""

    ca: Path
    cert: Path
    key: Path


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "dataops"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    write_atomically(path, data, KEY_MODE)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    write_atomically(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure_endpoint_ca(directory: Path, endpoint: str, now: dt.datetime | None = None) -> Path:
    """Create the endpoint's certificate authority in ``directory`` unless a valid one is there.

    Args:
        directory: The endpoint's private TLS folder (created with mode 0700).
        endpoint: The endpoint's name, written into the CA's subject.
        now: The time certificates start from (tests move it); default now.

    Returns:
        The CA certificate's path.
    """
    now = now or _now()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca_path, key_path = directory / CA_FILE, directory / CA_KEY_FILE
    if ca_path.exists() and key_path.exists():
        if x509.load_pem_x509_certificate(ca_path.read_bytes()).not_valid_after_utc - now > SERVER_VALIDITY:
            return ca_path
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(f"dataops endpoint {endpoint} CA")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    _write_cert(ca_path, cert)
    return ca_path


def issue_server_certificate(directory: Path, node: str, names: Iterable[str], addresses: Iterable[str],
                             now: dt.datetime | None = None) -> ServerCertificate:
    """Issue (or keep) the server certificate of one node, signed by the endpoint's CA.

    Args:
        directory: The endpoint's TLS folder, holding the CA made by :func:`ensure_endpoint_ca`.
        node: The node's name: the certificate's subject and the files' names.
        names: DNS names the certificate must cover (the node's name is always among them).
        addresses: IP addresses it must cover (fixed and floating); empty entries are skipped.
        now: The time the certificate starts from (tests move it); default now.

    Returns:
        The CA, certificate and key paths.
    """
    now = now or _now()
    files = ServerCertificate(ca=directory / CA_FILE, cert=directory / f"{node}.pem", key=directory / f"{node}.key")
    wanted_names = sorted({node, *(n for n in names if n)})
    wanted_ips = sorted({ipaddress.ip_address(a) for a in addresses if a}, key=str)
    ca_cert = x509.load_pem_x509_certificate(files.ca.read_bytes())
    if files.cert.exists() and files.key.exists() and certificate_is_current(files.cert, ca_cert, wanted_names,
                                                                              wanted_ips, now):
        return files
    ca_key = serialization.load_pem_private_key((directory / CA_KEY_FILE).read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    alt_names = [x509.DNSName(n) for n in wanted_names] + [x509.IPAddress(ip) for ip in wanted_ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(node))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(files.key, key)
    _write_cert(files.cert, cert)
    return files


def certificate_is_current(cert_path: Path, ca_cert: x509.Certificate, names: Iterable[str],
                           addresses: Iterable[ipaddress.IPv4Address | ipaddress.IPv6Address],
                           now: dt.datetime) -> bool:
    """Whether a node's certificate can stay: signed by ``ca_cert``, covering every name and address, and not
    within :data:`RENEW_BEFORE` of its end."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.issuer != ca_cert.subject or cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return (set(names) <= set(sans.get_values_for_type(x509.DNSName))
            and set(addresses) <= set(sans.get_values_for_type(x509.IPAddress)))
