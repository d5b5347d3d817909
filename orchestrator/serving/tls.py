"""TLS on the serving port: what a server is allowed to listen with, and the TLS policy it listens by.

Bearer tokens and the rows scored travel in every request, so a server other hosts can reach speaks HTTPS: plain
HTTP is served on a loopback address, or anywhere only when its operator says so (``insecure_http``). The policy
is TLS 1.2 or later with forward-secret AEAD suites only (TLS 1.3's suites are all of that kind).
"""

from __future__ import annotations

import ipaddress
import ssl

from orchestrator.serving.errors import TransportRefused
from orchestrator.serving.settings import ServerSettings

# The TLS 1.2 suites allowed: ECDHE key exchange (forward secrecy) with AES-GCM or ChaCha20-Poly1305; OpenSSL sets
# the TLS 1.3 suites apart, and all of them are AEAD.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"
MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def serves_tls(settings: ServerSettings) -> bool:
    """Whether the server is to speak HTTPS (it is given a certificate)."""
    return bool(settings.tls_cert)


def check_transport(settings: ServerSettings) -> None:
    """Refuse settings that would expose the server in the clear, or that give half of the TLS material.

    Args:
        settings: The server's settings.

    Raises:
        TransportRefused: a certificate without its key (or the reverse), TLS together with ``insecure_http``, plain
            HTTP on an address other hosts can reach without ``insecure_http``, or a certificate and key that cannot
            be loaded together.
    """
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise TransportRefused("TLS needs both a certificate and its key (--tls-cert and --tls-key)")
    if serves_tls(settings):
        if settings.insecure_http:
            raise TransportRefused("--insecure-http and --tls-cert contradict each other: give one of them")
        server_context(settings)
        return
    if not settings.insecure_http and not is_loopback(settings.host):
        raise TransportRefused(
            f"serving {settings.host} in plain HTTP would send bearer tokens and predictions in the clear: give "
            "--tls-cert and --tls-key, bind a loopback address, or pass --insecure-http to serve plain HTTP anyway")


def server_context(settings: ServerSettings) -> ssl.SSLContext:
    """The TLS context the serving port listens with (the policy above, the server's certificate and key).

    Raises:
        TransportRefused: the certificate or key cannot be read, or they do not belong together.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = MINIMUM_VERSION
    context.set_ciphers(CIPHERS)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        # The key's path may be named; its content never is.
        raise TransportRefused(f"the TLS certificate {settings.tls_cert} and key {settings.tls_key} cannot be "
                               f"used: {getattr(exc, 'strerror', None) or exc.__class__.__name__}") from None
    return context


def uvicorn_tls_options(settings: ServerSettings) -> dict:
    """uvicorn's keyword arguments for this policy; empty for plain HTTP.

    uvicorn builds the context in every worker from these (a context object cannot travel to worker processes);
    the protocol constant gives TLS 1.2 at least, as :data:`MINIMUM_VERSION` says.
    """
    if not serves_tls(settings):
        return {}
    return {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key,
            "ssl_version": ssl.PROTOCOL_TLS_SERVER, "ssl_ciphers": CIPHERS}
