"""Per-cluster TLS material is signed by the cluster's own CA, private keys are private, re-issuing keeps
existing certificates; the example cluster files are valid; durations parse or fail clearly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509

from orchestrator.clusters import tls
from orchestrator.clusters.spec import load_cluster_spec
from orchestrator.durations import parse_duration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "clusters"


def test_node_certificates_are_signed_by_the_cluster_ca_and_name_the_node_address(tmp_path):
    tls.ensure_ca(tmp_path, "demo")
    files = tls.issue_certificate(tmp_path, "demo-worker-0", ["10.42.0.7"])
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    addresses = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in addresses.get_values_for_type(x509.IPAddress)] == ["10.42.0.7"]
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ca.key").stat().st_mode & 0o777 == 0o600


def test_issuing_again_keeps_the_certificate_unless_the_address_changed(tmp_path):
    tls.ensure_ca(tmp_path, "demo")
    first = tls.issue_certificate(tmp_path, "n", ["10.42.0.7"]).cert.read_bytes()
    assert tls.issue_certificate(tmp_path, "n", ["10.42.0.7"]).cert.read_bytes() == first
    assert tls.issue_certificate(tmp_path, "n", ["10.42.0.8"]).cert.read_bytes() != first


def test_each_cluster_has_its_own_ca(tmp_path):
    a = tls.ensure_ca(tmp_path / "a", "a").read_bytes()
    b = tls.ensure_ca(tmp_path / "b", "b").read_bytes()
    assert a != b


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_cluster_files_are_valid(path):
    assert load_cluster_spec(path).name


def test_durations_parse_and_bad_ones_say_what_is_expected():
    assert timedelta(seconds=parse_duration("1d12h", "--ttl")) == timedelta(hours=36)
    assert timedelta(seconds=parse_duration("30m", "--ttl")) == timedelta(minutes=30)
    with pytest.raises(ValueError, match="expected a duration such as 8h"):
        parse_duration("eight hours", "--ttl")
