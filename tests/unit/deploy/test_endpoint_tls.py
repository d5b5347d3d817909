"""Each endpoint has its own certificate authority and each node a server certificate naming the node, its fixed
and floating IPs and the endpoint file's names: valid a year, its key mode 0600 in a 0700 folder, issued again
when an address is missing, when it is a month from its end, or when the CA changed; kept otherwise."""

import datetime as dt
import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from orchestrator.deploy import tls

NOW = dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def _load(path):
    return x509.load_pem_x509_certificate(path.read_bytes())


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def directory(tmp_path):
    folder = tmp_path / "endpoints" / "web" / "tls"
    tls.ensure_endpoint_ca(folder, "web", now=NOW)
    return folder


def test_a_node_certificate_names_the_node_its_fixed_and_floating_ips_and_the_files_names(directory):
    files = tls.issue_server_certificate(directory, "web-0", ["predict.example.org"], ["10.43.0.10", "203.0.113.7"],
                                         now=NOW)
    cert = _load(files.cert)
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["predict.example.org", "web-0"]
    assert sorted(map(str, sans.get_values_for_type(x509.IPAddress))) == ["10.43.0.10", "203.0.113.7"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH], "a server certificate, not a client one"
    cert.verify_directly_issued_by(_load(files.ca))


def test_a_node_without_a_floating_ip_gets_its_fixed_address_only(directory):
    files = tls.issue_server_certificate(directory, "web-1", [], ["10.43.0.11", None, ""], now=NOW)
    sans = _load(files.cert).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.43.0.11")]


def test_server_certificates_last_a_year_and_the_ca_ten(directory):
    files = tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=NOW)
    cert, ca = _load(files.cert), _load(files.ca)
    assert cert.not_valid_after_utc - NOW == tls.SERVER_VALIDITY == dt.timedelta(days=365)
    assert ca.not_valid_after_utc - NOW == tls.CA_VALIDITY
    assert cert.not_valid_before_utc < NOW, "a node whose clock is a little behind accepts it"
    constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca and constraints.path_length == 0


def test_keys_are_readable_by_the_operator_alone_and_certificates_by_anyone(directory):
    files = tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=NOW)
    assert _mode(directory) == 0o700
    assert _mode(files.key) == _mode(directory / tls.CA_KEY_FILE) == 0o600
    assert _mode(files.cert) == _mode(files.ca) == 0o644


def test_a_certificate_that_still_covers_the_node_is_kept(directory):
    first = tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10", "203.0.113.7"], now=NOW)
    serial = _load(first.cert).serial_number
    again = tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=NOW + dt.timedelta(days=300))
    assert _load(again.cert).serial_number == serial


def test_a_new_floating_ip_or_name_issues_a_new_certificate(directory):
    first = _load(tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=NOW).cert)
    with_ip = _load(tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10", "203.0.113.9"], now=NOW).cert)
    assert with_ip.serial_number != first.serial_number
    with_name = _load(tls.issue_server_certificate(directory, "web-0", ["api.example.org"], ["10.43.0.10"],
                                                   now=NOW).cert)
    assert with_name.serial_number != with_ip.serial_number


def test_a_certificate_a_month_from_its_end_is_renewed(directory):
    first = _load(tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=NOW).cert)
    late = NOW + tls.SERVER_VALIDITY - tls.RENEW_BEFORE + dt.timedelta(hours=1)
    renewed = _load(tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=late).cert)
    assert renewed.serial_number != first.serial_number
    assert renewed.not_valid_after_utc - late == tls.SERVER_VALIDITY


def test_a_ca_near_its_end_is_replaced_and_the_node_certificates_follow_it(directory):
    old_ca = _load(directory / tls.CA_FILE)
    tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=NOW)
    late = NOW + tls.CA_VALIDITY - tls.SERVER_VALIDITY + dt.timedelta(days=1)
    assert tls.ensure_endpoint_ca(directory, "web", now=late) == directory / tls.CA_FILE
    new_ca = _load(directory / tls.CA_FILE)
    assert new_ca.serial_number != old_ca.serial_number
    files = tls.issue_server_certificate(directory, "web-0", [], ["10.43.0.10"], now=late)
    _load(files.cert).verify_directly_issued_by(new_ca)


def test_the_ca_is_made_once(directory):
    serial = _load(directory / tls.CA_FILE).serial_number
    tls.ensure_endpoint_ca(directory, "web", now=NOW + dt.timedelta(days=10))
    assert _load(directory / tls.CA_FILE).serial_number == serial
    assert "dataops endpoint web CA" in _load(directory / tls.CA_FILE).subject.rfc4514_string()
