"""Plain HTTP only where no other host can listen in, unless asked for: a server bound to any other address needs
a certificate and its key, or --insecure-http; half of the TLS material, or a key that is not the certificate's,
stops the server before it loads a model, naming the files and never their content."""

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from support.live_server import loopback_tls

from orchestrator.cli.main import app
from orchestrator.serving.errors import TransportRefused
from orchestrator.serving.settings import ServerSettings
from orchestrator.serving.tls import check_transport, is_loopback, uvicorn_tls_options


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    return loopback_tls(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.42", "::1", "localhost"])
def test_loopback_addresses_may_serve_plain_http(host):
    assert is_loopback(host)
    check_transport(ServerSettings(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.43.0.5", "203.0.113.7", "inference.example.org"])
def test_any_other_address_without_tls_is_refused_naming_the_options(host):
    with pytest.raises(TransportRefused, match="--tls-cert and --tls-key.*--insecure-http"):
        check_transport(ServerSettings(host=host))


def test_insecure_http_serves_plain_http_anywhere_when_asked_for():
    check_transport(ServerSettings(host="0.0.0.0", insecure_http=True))
    assert uvicorn_tls_options(ServerSettings(host="0.0.0.0", insecure_http=True)) == {}


def test_any_address_serves_https_with_a_certificate_and_its_key(material):
    settings = ServerSettings(host="0.0.0.0", tls_cert=str(material.cert), tls_key=str(material.key))
    check_transport(settings)
    options = uvicorn_tls_options(settings)
    assert options["ssl_certfile"] == str(material.cert) and options["ssl_keyfile"] == str(material.key)
    assert "ECDHE" in options["ssl_ciphers"]


def test_a_certificate_without_its_key_or_with_insecure_http_is_refused(material):
    with pytest.raises(TransportRefused, match="both a certificate and its key"):
        check_transport(ServerSettings(tls_cert=str(material.cert)))
    with pytest.raises(TransportRefused, match="contradict"):
        check_transport(ServerSettings(tls_cert=str(material.cert), tls_key=str(material.key), insecure_http=True))


def test_a_key_that_is_not_the_certificates_is_refused_without_showing_it(material, tmp_path):
    other = loopback_tls(tmp_path / "other")
    with pytest.raises(TransportRefused, match="cannot be used") as refused:
        check_transport(ServerSettings(tls_cert=str(material.cert), tls_key=str(other.key)))
    assert "PRIVATE KEY" not in str(refused.value) and other.key.read_text()[40:80] not in str(refused.value)


def test_the_standalone_server_refuses_plain_http_on_all_interfaces_before_loading_anything(tmp_path):
    result = subprocess.run([sys.executable, "-m", "orchestrator.serving", str(tmp_path / "no-model"),
                             "--host", "0.0.0.0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Error: serving 0.0.0.0 in plain HTTP would send bearer tokens" in result.stderr


def test_dataops_serve_refuses_plain_http_on_another_address_with_the_error_exit_code(model_folder):
    result = CliRunner().invoke(app, ["serve", str(model_folder), "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "pass --insecure-http to serve plain HTTP anyway" in " ".join(result.output.split())
