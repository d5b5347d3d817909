"""The serving port speaks HTTPS with a certificate of the endpoint's own CA: tritonclient.http with ssl=True and
curl --cacert reach it and verify it, a client that does not trust that CA is refused, plain HTTP to the TLS port
gets no answer, TLS below 1.2 and suites without forward secrecy or AEAD are refused, and keep-alive still holds."""

import http.client
import json
import ssl
import subprocess

import numpy as np
import pytest
import tritonclient.http as triton
from support.live_server import TOKEN
from support.tiny_models import NUMERIC, valid_row

from orchestrator.serving.model import load_model_folder

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ROWS = [valid_row(), valid_row(dep_hour=18.0, carrier="UA")]


def _inputs(rows):
    inputs = []
    for column in rows[0]:
        numeric = column in NUMERIC
        values = np.array([row[column] for row in rows], dtype=np.float32 if numeric else object).reshape(-1, 1)
        tensor = triton.InferInput(column, list(values.shape), "FP32" if numeric else "BYTES")
        tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    return inputs


def test_tritonclient_with_ssl_verifies_the_endpoint_ca_and_gets_onnxruntime_results(tls_server, models):
    with triton.InferenceServerClient(tls_server.url, ssl=True, ssl_options={"ca_certs": str(tls_server.tls.ca)}) \
            as client:
        assert client.is_server_ready()
        result = client.infer("flights-delay", _inputs(ROWS), headers=AUTH)
    model = load_model_folder(models["v1"])
    feeds = {c: np.array([r[c] for r in ROWS], dtype=np.float32 if c in NUMERIC else object).reshape(-1, 1)
             for c in ROWS[0]}
    np.testing.assert_allclose(result.as_numpy("probabilities"), model.run(feeds)["probabilities"], atol=1e-6)


def test_a_client_that_does_not_trust_the_endpoint_ca_is_refused_the_connection(tls_server):
    # geventhttpclient verifies against the system's CAs (certifi) when given none: the endpoint's CA is not there.
    with triton.InferenceServerClient(tls_server.url, ssl=True) as client:
        with pytest.raises(ssl.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            client.is_server_live()


def test_curl_with_the_ca_certificate_predicts_and_curl_without_it_fails_verification(tls_server):
    url = f"{tls_server.base_url}/v2/models/flights-delay/predict"
    body = json.dumps({"records": ROWS})
    command = ["curl", "-sS", "--fail-with-body", "-H", f"Authorization: Bearer {TOKEN}", "-H",
               "Content-Type: application/json", "-d", body, url]
    answered = subprocess.run([*command[:1], "--cacert", str(tls_server.tls.ca), *command[1:]],
                              capture_output=True, text=True, timeout=30)
    assert answered.returncode == 0, answered.stderr
    assert len(json.loads(answered.stdout)["labels"]) == 2
    refused = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 60, f"curl without --cacert must fail verification (exit 60): {refused.stderr}"


def test_the_certificate_names_localhost_as_well_as_the_address(tls_server):
    context = ssl.create_default_context(cafile=str(tls_server.tls.ca))
    connection = http.client.HTTPSConnection("localhost", tls_server.port, timeout=10, context=context)
    try:
        connection.request("GET", "/v2/health/ready")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_plain_http_to_the_tls_port_gets_no_http_answer_and_the_server_keeps_serving(tls_server):
    connection = http.client.HTTPConnection("127.0.0.1", tls_server.port, timeout=10)
    try:
        with pytest.raises((http.client.HTTPException, ConnectionError)):
            connection.request("GET", "/v2/health/ready", headers=AUTH)
            connection.getresponse().read()
    finally:
        connection.close()
    assert tls_server.request("GET", "/v2/health/ready")[0] == 200


def _handshake(port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    import socket

    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


def _client(tls_server, minimum, maximum, ciphers: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls_server.tls.ca))
    # Security level 0 so that the refusal, if any, is the server's, not this client's own policy.
    context.set_ciphers(f"{ciphers}:@SECLEVEL=0")
    context.minimum_version, context.maximum_version = minimum, maximum
    return context


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_tls_older_than_1_2_is_refused(tls_server):
    context = _client(tls_server, ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1, "ALL")
    with pytest.raises(ssl.SSLError) as refused:
        _handshake(tls_server.port, context).close()
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), "the client must have offered TLS 1.0/1.1"


@pytest.mark.parametrize("suite", ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-ECDSA-AES256-SHA384"])
def test_tls_1_2_suites_without_forward_secrecy_or_aead_are_refused(tls_server, suite):
    context = _client(tls_server, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, suite)
    with pytest.raises(ssl.SSLError):
        _handshake(tls_server.port, context).close()
    accepted = _client(tls_server, ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256")
    with _handshake(tls_server.port, accepted) as sock:
        assert sock.version() == "TLSv1.2" and sock.cipher()[0] == "ECDHE-ECDSA-AES128-GCM-SHA256"


def test_a_default_client_negotiates_tls_1_3_and_keeps_one_connection_alive_across_requests(tls_server):
    connection = tls_server.connection()
    try:
        sockets = set()
        for _ in range(20):
            connection.request("POST", "/v2/models/flights-delay/predict", body=json.dumps({"records": ROWS[:1]}),
                               headers={**AUTH, "Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200, response.read()
            response.read()
            sockets.add(id(connection.sock))
        assert len(sockets) == 1, "every request went over the same TLS connection"
        assert connection.sock.version() == "TLSv1.3"
    finally:
        connection.close()
