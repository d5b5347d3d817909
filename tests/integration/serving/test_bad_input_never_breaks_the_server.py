"""Property tests: whatever a client sends, the answer is 200 or a 4xx with a message, never a 5xx, never a crash."""

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.tiny_models import v2_inputs, valid_row

pytestmark = pytest.mark.integration

json_scalars = st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)
DATATYPES = st.sampled_from(["FP32", "BYTES", "INT64", "FP64", "BOOL", "fp32", "", None])
FIELDS = ("name", "shape", "datatype", "data", "parameters")


@st.composite
def mutated_v2_requests(draw):
    rows = draw(st.integers(1, 3))
    payload = {"inputs": v2_inputs([valid_row() for _ in range(rows)])}
    for _ in range(draw(st.integers(1, 3))):
        tensor = draw(st.sampled_from(payload["inputs"]))
        field = draw(st.sampled_from(FIELDS))
        choice = draw(st.integers(0, 5))
        if choice == 0:
            tensor.pop(field, None)
        elif field == "datatype":
            tensor[field] = draw(DATATYPES)
        elif field == "shape":
            tensor[field] = draw(st.lists(st.integers(-2, 4), max_size=3) | json_values)
        elif field == "parameters":
            tensor[field] = {"binary_data_size": draw(st.integers(-5, 50) | json_values)}
        else:
            tensor[field] = draw(json_values)
    if draw(st.booleans()):
        payload["outputs"] = draw(st.lists(st.fixed_dictionaries({"name": st.sampled_from(["label", "probabilities", "x"]) | json_values}), max_size=3))
    return payload


def assert_client_error_or_success(status, body):
    assert status < 500, f"got {status}: {body[:300]!r}"
    if status >= 400:
        assert json.loads(body)["error"], "a refusal must say why"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(payload=mutated_v2_requests())
def test_mutated_v2_tensors_never_cause_a_5xx(server, payload):
    status, body, _ = server.request("POST", "/v2/models/flights-delay/infer", json.dumps(payload).encode())
    assert_client_error_or_success(status, body)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header_length=st.integers(-3, 400) | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=4), tail=st.binary(max_size=64),
       binary_size=st.integers(0, 80))
def test_garbled_binary_tensor_bodies_never_cause_a_5xx(server, header_length, tail, binary_size):
    header = {"inputs": v2_inputs([valid_row()])}
    header["inputs"][3] = {"name": "carrier", "datatype": "BYTES", "shape": [1, 1],
                           "parameters": {"binary_data_size": binary_size}}
    head = orjson.dumps(header)
    status, body, _ = server.request("POST", "/v2/models/flights-delay/infer", head + tail,
                                     {"Inference-Header-Content-Length": str(header_length)})
    assert_client_error_or_success(status, body)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(st.dictionaries(st.sampled_from(list(valid_row())) | st.text(max_size=4), json_values, max_size=6)
                        .map(lambda extra: {**valid_row(), **extra}), min_size=1, max_size=4) | json_values)
def test_arbitrary_records_never_cause_a_5xx(server, records):
    status, body, _ = server.request("POST", "/v2/models/flights-delay/predict", json.dumps({"records": records}).encode())
    assert_client_error_or_success(status, body)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), route=st.sampled_from(["infer", "predict"]),
       encoding=st.sampled_from(["identity", "gzip", "deflate"]))
def test_raw_bytes_never_cause_a_5xx(server, raw, route, encoding):
    status, body, _ = server.request("POST", f"/v2/models/flights-delay/{route}", raw, {"Content-Encoding": encoding})
    assert_client_error_or_success(status, body)


def test_the_server_is_still_live_after_the_fuzzing(server):
    assert server.request("GET", "/v2/health/live")[0] == 200
    assert server.process.poll() is None
