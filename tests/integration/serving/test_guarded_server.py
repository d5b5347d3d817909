"""Bearer token, body size limit, the flag policy for out-of-range values, and micro-batching under concurrency."""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import tritonclient.http as triton
from support.live_server import TOKEN
from test_v2_protocol import ROWS, expected_for, triton_inputs
from support.tiny_models import valid_row
from tritonclient.utils import InferenceServerException

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_requests_without_the_bearer_token_are_401(guarded_server):
    status, body, headers = guarded_server.request("GET", "/v2/models/flights-delay")
    assert status == 401 and headers.get("www-authenticate") == "Bearer"
    assert json.loads(body) == {"error": "missing or invalid bearer token"}
    assert guarded_server.request("GET", "/v2/models/flights-delay", headers={"Authorization": "Bearer nope"})[0] == 401
    assert guarded_server.request("GET", "/metrics")[0] == 401


def test_health_probes_stay_open_and_the_token_opens_everything_else(guarded_server):
    assert guarded_server.request("GET", "/v2/health/live")[0] == 200
    assert guarded_server.request("GET", "/v2/models/flights-delay", headers=AUTH)[0] == 200
    with triton.InferenceServerClient(guarded_server.url) as client:
        assert client.infer("flights-delay", triton_inputs(ROWS, True), headers=AUTH).as_numpy("label").shape == (3,)
        with pytest.raises(InferenceServerException, match="bearer token"):
            client.infer("flights-delay", triton_inputs(ROWS, True))


def test_the_token_never_reaches_the_logs(guarded_server):
    guarded_server.request("GET", "/v2/models/flights-delay", headers=AUTH)
    time.sleep(0.2)
    log = guarded_server.log_text()
    assert '"route":"model_metadata"' in log and TOKEN not in log


def test_a_body_over_the_limit_is_413_before_it_is_parsed(guarded_server):
    records = {"records": [valid_row()] * 100}
    status, answer = guarded_server.json("POST", "/v2/models/flights-delay/predict", records, AUTH)
    assert status == 413 and "exceeds the limit of 4096 bytes" in answer["error"]


def test_flag_policy_answers_out_of_range_rows_and_counts_them(guarded_server):
    status, answer = guarded_server.json("POST", "/v2/models/flights-delay/predict",
                                         {"records": [valid_row(), valid_row(dep_hour=2.0, origin="BOS")]}, AUTH)
    assert status == 200 and len(answer["labels"]) == 2
    assert answer["out_of_range"] == {"dep_hour": [1], "origin": [1]}
    metrics = guarded_server.request("GET", "/metrics", headers=AUTH)[1].decode()
    assert 'dataops_serving_out_of_range_total{input="dep_hour",model="flights-delay"} 1.0' in metrics


def test_concurrent_single_row_requests_are_micro_batched_and_each_answered_correctly(guarded_server, models):
    rows = [valid_row(dep_hour=float(5 + i % 18), distance=200.0 + i) for i in range(64)]
    expected = expected_for(models["v1"], rows)["probabilities"]

    def one(index):
        status, answer = guarded_server.json("POST", "/v2/models/flights-delay/predict", {"records": [rows[index]]}, AUTH)
        assert status == 200, answer
        return answer["probabilities"][0]

    def batch_count():
        text = guarded_server.request("GET", "/metrics", headers=AUTH)[1].decode()
        count = [l for l in text.splitlines() if l.startswith('dataops_serving_batch_rows_count{model="flights-delay"}')]
        total = [l for l in text.splitlines() if l.startswith('dataops_serving_batch_rows_sum{model="flights-delay"}')]
        return float(count[0].split()[-1]), float(total[0].split()[-1])

    calls_before, rows_before = batch_count()
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(one, range(len(rows))))
    np.testing.assert_allclose(np.array(answers), expected, atol=1e-6)
    calls_after, rows_after = batch_count()
    assert rows_after - rows_before == 64
    assert calls_after - calls_before < 64, "some requests should have shared an onnxruntime call"


def test_several_worker_processes_share_one_metrics_view(models, tmp_path):
    from support.live_server import RunningServer, free_port

    server = RunningServer([sys.executable, "-m", "orchestrator.serving", str(models["v1"]), "--workers", "2"],
                           free_port(), tmp_path / "server.log")
    try:
        server.wait_ready()
        for _ in range(20):
            assert server.json("POST", "/v2/models/flights-delay/predict", {"records": [valid_row()]})[0] == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # a worker may still be loading its models for the first requests
            text = server.request("GET", "/metrics")[1].decode()
            line = [l for l in text.splitlines()
                    if l.startswith('dataops_serving_requests_total{model="flights-delay",route="predict",status="200"}')]
            if line and float(line[0].split()[-1]) == 20.0:
                break
            time.sleep(0.2)
        assert line and float(line[0].split()[-1]) == 20.0, text
    finally:
        server.stop()


def test_a_compressed_body_that_inflates_past_the_limit_is_413(guarded_server):
    import gzip

    bomb = gzip.compress(b"[" + b" " * 100000 + b"]")
    status, body, _ = guarded_server.request("POST", "/v2/models/flights-delay/predict", bomb,
                                             {**AUTH, "Content-Encoding": "gzip"})
    assert status == 413 and b"inflates to more than the limit of 4096 bytes" in body


@pytest.mark.parametrize("chunks", [[b" " * 8000], [b" " * 3000] * 3], ids=["one-chunk", "three-chunks"])
def test_a_chunked_body_without_content_length_is_413_past_the_limit(guarded_server, chunks):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", guarded_server.port, timeout=30)
    try:
        conn.request("POST", "/v2/models/flights-delay/predict", body=iter(chunks), encode_chunked=True,
                     headers={**AUTH, "Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 413 and b"exceeds the limit of 4096 bytes" in response.read()
    finally:
        conn.close()
