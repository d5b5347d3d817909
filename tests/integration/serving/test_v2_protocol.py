"""The server speaks the Open Inference Protocol to a real client (tritonclient.http), binary and JSON."""

import json
import shutil
import time

import numpy as np
import pytest
import tritonclient.http as triton
from support.tiny_models import NUMERIC, valid_row
from tritonclient.utils import InferenceServerException

from orchestrator.serving.model import load_model_folder

pytestmark = pytest.mark.integration

ROWS = [valid_row(), valid_row(dep_hour=18.0, carrier="UA", prev_delay=float("nan")),
        valid_row(origin="EWR", distance=2500.0)]


def triton_inputs(rows, binary):
    inputs = []
    for column in rows[0]:
        numeric = column in NUMERIC
        values = np.array([row[column] for row in rows], dtype=np.float32 if numeric else object).reshape(-1, 1)
        tensor = triton.InferInput(column, list(values.shape), "FP32" if numeric else "BYTES")
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    return inputs


def expected_for(folder, rows):
    model = load_model_folder(folder)
    feeds = {c: np.array([r[c] for r in rows], dtype=np.float32 if c in NUMERIC else object).reshape(-1, 1)
             for c in rows[0]}
    return model.run(feeds)


@pytest.fixture
def client(server):
    with triton.InferenceServerClient(server.url) as client:
        yield client


def test_server_and_model_health_and_metadata_answer_the_v2_client(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("flights-delay") and client.is_model_ready("flights-delay", "1")
    metadata = client.get_server_metadata()
    assert "binary_tensor_data" in metadata["extensions"] and "model_repository" in metadata["extensions"]
    model = client.get_model_metadata("flights-delay", "1")
    assert model["platform"] == "onnx_onnxv1" and model["versions"] == ["1"]
    assert {"name": "dep_hour", "datatype": "FP32", "shape": [-1, 1]} in model["inputs"]


@pytest.mark.parametrize("binary", [True, False], ids=["binary-tensors", "json-tensors"])
def test_tritonclient_infers_and_gets_onnxruntime_results(client, models, binary):
    outputs = [triton.InferRequestedOutput("label", binary_data=binary),
               triton.InferRequestedOutput("probabilities", binary_data=binary)]
    result = client.infer("flights-delay", triton_inputs(ROWS, binary), model_version="1", outputs=outputs,
                          request_id="r-42")
    expected = expected_for(models["v1"], ROWS)
    assert result.as_numpy("label").tolist() == expected["label"].tolist()
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], atol=1e-6)
    response = result.get_response()
    assert response["id"] == "r-42" and response["model_version"] == "1"
    assert ("binary_data_size" in response["outputs"][0].get("parameters", {})) is binary


def test_default_outputs_of_the_client_come_back_binary(client):
    result = client.infer("flights-delay", triton_inputs(ROWS, True))
    assert result.as_numpy("probabilities").shape == (3, 2)
    assert all("binary_data_size" in o["parameters"] for o in result.get_response()["outputs"])


def test_unversioned_requests_go_to_the_highest_version_and_versions_are_addressable(client, models):
    assert client.infer("flights-delay", triton_inputs(ROWS, True)).get_response()["model_version"] == "2"
    for version in ("1", "2"):
        result = client.infer("flights-delay", triton_inputs(ROWS, True), model_version=version)
        expected = expected_for(models[f"v{version}"], ROWS)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], atol=1e-6)


def test_several_models_are_served_by_one_process(client):
    assert client.infer("carrier-delay", triton_inputs(ROWS, True)).get_response()["model_name"] == "carrier-delay"


def test_unknown_model_and_version_are_404_naming_what_exists(client):
    with pytest.raises(InferenceServerException) as caught:
        client.infer("no-such-model", triton_inputs(ROWS, True))
    assert caught.value.status() == "404" and "served models are" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.infer("flights-delay", triton_inputs(ROWS, True), model_version="7")
    assert "has no loaded version '7': versions are [1, 2]" in caught.value.message()


def test_wrong_datatype_through_the_client_is_a_400_naming_input_expected_and_got(client):
    inputs = triton_inputs(ROWS, True)
    inputs[0] = triton.InferInput("dep_hour", [3, 1], "FP64")
    inputs[0].set_data_from_numpy(np.array([[9.0], [10.0], [11.0]]))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("flights-delay", inputs)
    assert caught.value.status() == "400"
    assert "input 'dep_hour': expected datatype FP32, got 'FP64'" in caught.value.message()


def test_repository_unloads_and_loads_models_without_restart(client, server, models):
    client.unload_model("carrier-delay")
    assert not client.is_model_ready("carrier-delay")
    with pytest.raises(InferenceServerException, match="not ready .unavailable: unloaded"):
        client.infer("carrier-delay", triton_inputs(ROWS, True))
    assert client.is_model_ready("flights-delay"), "unloading one model leaves the others served"
    client.load_model("carrier-delay")
    assert client.is_model_ready("carrier-delay")
    index = {(m["name"], m["version"]): m["state"] for m in client.get_model_repository_index()}
    assert index[("carrier-delay", "1")] == "READY" and index[("flights-delay", "2")] == "READY"


def test_a_model_dropped_into_the_repository_folder_is_loaded_on_request(client, server, models):
    with pytest.raises(InferenceServerException):
        client.load_model("late-arrival-x")
    shutil.copytree(models["late"], server.work / "repository" / "late-arrival" / "1")
    client.load_model("late-arrival")
    assert client.is_model_ready("late-arrival")
    assert client.infer("late-arrival", triton_inputs(ROWS, True)).as_numpy("label").shape == (3,)


def test_people_post_records_and_get_labels_and_probabilities(server):
    status, answer = server.json("POST", "/v2/models/flights-delay/versions/1/predict",
                                 {"records": [valid_row(), valid_row(prev_delay=None)]})
    assert status == 200, answer
    assert answer["model_version"] == 1 and answer["classes"] == [0, 1] and len(answer["labels"]) == 2
    status, answer = server.json("POST", "/v2/models/flights-delay/predict", {"records": [valid_row(carrier="ZZ")]})
    assert status == 400
    assert answer["error"].startswith("input 'carrier', row 0: expected one of the training categories")


def test_metrics_count_requests_by_model_and_status_with_latency_and_batch_sizes(server, client):
    client.infer("flights-delay", triton_inputs(ROWS, True))
    server.json("POST", "/v2/models/flights-delay/predict", {"records": [{"dep_hour": "x"}]})
    status, body, headers = server.request("GET", "/metrics")
    text = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert 'dataops_serving_requests_total{model="flights-delay",route="infer",status="200"}' in text
    assert 'dataops_serving_requests_total{model="flights-delay",route="predict",status="400"}' in text
    assert 'dataops_serving_request_seconds_bucket{le="0.015",model="flights-delay",route="infer"}' in text
    assert 'dataops_serving_batch_rows_count{model="flights-delay"}' in text
    assert "dataops_serving_in_flight_requests" in text


def test_every_request_gets_one_structured_access_log_line(server):
    server.request("GET", "/v2/models/flights-delay/ready")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith('{"ts"')]
        matching = [l for l in lines if l["path"] == "/v2/models/flights-delay/ready"]
        if matching:
            break
        time.sleep(0.1)
    entry = matching[-1]
    assert entry["status"] == 200 and entry["method"] == "GET" and entry["route"] == "model_ready"
    assert entry["model"] == "flights-delay" and entry["ms"] >= 0 and entry["client"].startswith("127.0.0.1:")


def test_sampled_inputs_and_outputs_are_captured_in_batches_to_the_folder(server, client):
    client.infer("carrier-delay", triton_inputs(ROWS, True), request_id="capture-me")
    deadline = time.monotonic() + 15  # the writer flushes every few seconds
    rows = []
    while time.monotonic() < deadline and not rows:
        for path in (server.work / "captures" / "carrier-delay" / "1").rglob("*.jsonl"):
            rows += [json.loads(line) for line in path.read_text().splitlines()]
        rows = [r for r in rows if r["request_id"] == "capture-me"]
        time.sleep(0.2)
    assert len(rows) == 3
    assert rows[1]["inputs"]["carrier"] == "UA" and rows[1]["inputs"]["prev_delay"] is None
    assert set(rows[0]["outputs"]) == {"label", "probabilities"}


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_from_the_client_are_inflated(client, models, algorithm):
    result = client.infer("flights-delay", triton_inputs(ROWS, True), model_version="1",
                          request_compression_algorithm=algorithm)
    assert result.as_numpy("label").tolist() == expected_for(models["v1"], ROWS)["label"].tolist()


def test_unknown_content_encoding_is_415(server):
    status, body, _ = server.request("POST", "/v2/models/flights-delay/predict", b"{}", {"Content-Encoding": "br"})
    assert status == 415 and b"use identity, gzip or deflate" in body


def test_an_unknown_path_is_404_and_a_wrong_method_405_naming_the_right_one(server):
    status, body, _ = server.request("GET", "/v2/modles/flights-delay")
    assert status == 404 and "/v2/modles/flights-delay" in json.loads(body)["error"]
    status, body, headers = server.request("GET", "/v2/models/flights-delay/infer")
    assert status == 405 and headers.get("allow") == "POST" and "use POST" in json.loads(body)["error"]


def test_model_names_made_up_by_clients_add_no_metric_series(server):
    for index in range(3):
        assert server.json("POST", f"/v2/models/made-up-{index}/infer", {"inputs": []})[0] == 404
    assert server.request("GET", "/v2/models/made-up-3/infer")[0] == 405
    metrics = server.request("GET", "/metrics")[1].decode()
    assert "made-up" not in metrics
    assert 'dataops_serving_requests_total{model="",route="infer",status="404"}' in metrics
