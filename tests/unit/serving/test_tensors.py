import math

import numpy as np
import orjson
import pytest
from support.tiny_models import v2_inputs, valid_row
from tritonclient.utils import serialize_byte_tensor

from orchestrator.serving.codecs import (check_values, decode_infer_request, decode_records, encode_infer_response,
                                         encode_predictions)
from orchestrator.serving.errors import BadRequest


def body(rows, **extra):
    return orjson.dumps({"inputs": v2_inputs(rows), **extra})


def decode(payload, model, header=None):
    return decode_infer_request(payload, header, model)


def test_json_tensors_become_one_column_arrays_per_input(model):
    decoded = decode(body([valid_row(), valid_row(carrier="UA")]), model)
    assert decoded.rows == 2
    assert decoded.feeds["dep_hour"].shape == (2, 1) and decoded.feeds["dep_hour"].dtype == np.float32
    assert decoded.feeds["carrier"][:, 0].tolist() == ["AA", "UA"]


def test_nested_and_flat_json_data_are_the_same_tensor(model):
    payload = orjson.loads(body([valid_row(), valid_row()]))
    for tensor in payload["inputs"]:
        tensor["data"] = [[value] for value in tensor["data"]]
    nested = decode(orjson.dumps(payload), model)
    flat = decode(body([valid_row(), valid_row()]), model)
    assert all((nested.feeds[k] == flat.feeds[k]).all() for k in flat.feeds)


def test_binary_tensor_extension_reads_fp32_and_length_prefixed_bytes(model):
    header = {"inputs": [], "outputs": [{"name": "label", "parameters": {"binary_data": True}}]}
    chunks = []
    for name, values in [("dep_hour", [9.0, 10.0]), ("distance", [500.0, 600.0]), ("prev_delay", [1.0, 2.0])]:
        data = np.array(values, dtype="<f4").tobytes()
        header["inputs"].append({"name": name, "datatype": "FP32", "shape": [2, 1],
                                 "parameters": {"binary_data_size": len(data)}})
        chunks.append(data)
    for name, values in [("carrier", ["AA", "DL"]), ("origin", ["JFK", "EWR"])]:
        data = serialize_byte_tensor(np.array(values, dtype=object)).item()
        header["inputs"].append({"name": name, "datatype": "BYTES", "shape": [2, 1],
                                 "parameters": {"binary_data_size": len(data)}})
        chunks.append(data)
    head = orjson.dumps(header)
    decoded = decode(head + b"".join(chunks), model, str(len(head)))
    assert decoded.feeds["distance"][:, 0].tolist() == [500.0, 600.0]
    assert decoded.feeds["origin"][:, 0].tolist() == ["JFK", "EWR"]
    assert decoded.outputs[0].binary is True


def test_binary_outputs_follow_the_json_header_and_report_their_sizes(model):
    decoded = decode(orjson.dumps({"inputs": v2_inputs([valid_row()]), "parameters": {"binary_data_output": True}}),
                     model)
    results = model.run(decoded.feeds)
    payload, header_length = encode_infer_response(model, decoded, results)
    header = orjson.loads(payload[:header_length])
    sizes = [o["parameters"]["binary_data_size"] for o in header["outputs"]]
    assert sizes == [8, 8] and len(payload) == header_length + 16
    assert np.frombuffer(payload[header_length + 8:], "<f4").tolist() == pytest.approx(results["probabilities"][0].tolist())


@pytest.mark.parametrize("mutate, message", [
    (lambda p: p["inputs"][0].update(datatype="INT64"), "input 'dep_hour': expected datatype FP32, got 'INT64'"),
    (lambda p: p["inputs"][3].update(datatype="FP32"), "input 'carrier': expected datatype BYTES, got 'FP32'"),
    (lambda p: p["inputs"][0].update(shape=[1]), "input 'dep_hour': expected shape [N, 1] with N >= 1 (FP32, one column), got [1]"),
    (lambda p: p["inputs"][0].update(shape=[2, 1]), "input 'dep_hour': shape [2, 1] needs 2 values, got 1"),
    (lambda p: p["inputs"].pop(4), "missing input(s) 'origin' (BYTES, shape [-1, 1])"),
    (lambda p: p["inputs"].append({**p["inputs"][0], "name": "wind"}), "unknown input 'wind': model 'flights-delay' expects inputs"),
    (lambda p: p["inputs"].append(dict(p["inputs"][0])), "input 'dep_hour' is given twice"),
    (lambda p: p["inputs"][0].update(data=["nine"]), "input 'dep_hour', element 0: expected a number (FP32), got \"nine\""),
    (lambda p: p["inputs"][0].update(data=[True]), "expected a number (FP32), got true"),
    (lambda p: p["inputs"][3].update(data=[7]), "input 'carrier', element 0: expected a string (BYTES), got 7"),
    (lambda p: p["inputs"][0].update(data=[None]), "expected a number (FP32), got null"),
    (lambda p: p.update(outputs=[{"name": "score"}]), "unknown output 'score'"),
    (lambda p: p["inputs"][0].pop("data"), "input 'dep_hour': no 'data' and no binary_data_size parameter"),
    (lambda p: p["inputs"][0].update(parameters={"binary_data_size": 4}), "binary_data_size given but the request has no binary part"),
])
def test_bad_tensor_is_refused_naming_input_expected_and_got(model, mutate, message):
    payload = orjson.loads(body([valid_row()]))
    mutate(payload)
    with pytest.raises(BadRequest) as caught:
        decode(orjson.dumps(payload), model)
    assert message in str(caught.value)


def test_inputs_with_different_row_counts_are_refused(model):
    payload = orjson.loads(body([valid_row(), valid_row()]))
    payload["inputs"][1].update(shape=[1, 1], data=[500.0])
    with pytest.raises(BadRequest, match="different numbers of rows"):
        decode(orjson.dumps(payload), model)


def test_nan_is_refused_where_the_card_says_not_nullable_and_accepted_where_it_does(model):
    nullable = decode(body([valid_row(prev_delay=None)]).replace(b"null", b"NaN"), model)
    assert check_values(nullable, model, "reject") == {}
    assert math.isnan(nullable.feeds["prev_delay"][0, 0])
    bad = decode(body([valid_row(dep_hour=None)]).replace(b"null", b"NaN"), model)
    with pytest.raises(BadRequest, match="input 'dep_hour', row 0: NaN where the model card says not nullable"):
        check_values(bad, model, "reject")


def test_numbers_beyond_fp32_and_infinities_are_always_refused(model):
    with pytest.raises(BadRequest, match="input 'prev_delay', element 0: expected a finite FP32 value, got 1e\\+39"):
        decode(body([valid_row(prev_delay=1e39)]), model)
    binary_inf = decode(body([valid_row()]), model)
    binary_inf.feeds["prev_delay"][0, 0] = np.inf  # as a binary tensor can carry it
    binary_inf.columns = None
    with pytest.raises(BadRequest, match="input 'prev_delay', row 0: expected a finite FP32 value, got inf"):
        check_values(binary_inf, model, "reject")


def test_value_outside_training_range_is_rejected_with_the_range(model):
    decoded = decode(body([valid_row(), valid_row(dep_hour=2.0)]), model)
    with pytest.raises(BadRequest) as caught:
        check_values(decoded, model, "reject")
    assert "input 'dep_hour', row 1: expected a value in the training range [5.0, 23.0], got 2.0" in str(caught.value)


def test_unknown_category_is_rejected_listing_training_categories(model):
    decoded = decode(body([valid_row(carrier="ZZ")]), model)
    with pytest.raises(BadRequest, match=r"input 'carrier', row 0: expected one of the training categories \['AA', 'DL', 'UA'\], got 'ZZ'"):
        check_values(decoded, model, "reject")


def test_flag_policy_accepts_out_of_range_rows_and_reports_them(model):
    decoded = decode(body([valid_row(), valid_row(carrier="ZZ", distance=99999.0)]), model)
    flags = check_values(decoded, model, "flag")
    assert flags == {"distance": [1], "carrier": [1]}
    payload, _ = encode_infer_response(model, decoded, model.run(decoded.feeds))
    assert orjson.loads(orjson.loads(payload)["parameters"]["out_of_range"]) == flags


def test_records_route_reads_named_typed_columns(model):
    decoded = decode_records(orjson.dumps({"records": [valid_row(), valid_row(prev_delay=None)]}), model)
    check_values(decoded, model, "reject")
    answer = orjson.loads(encode_predictions(model, decoded, model.run(decoded.feeds)))
    assert len(answer["labels"]) == 2 and answer["classes"] == [0, 1]
    assert all(sum(p) == pytest.approx(1.0, abs=1e-5) for p in answer["probabilities"])


@pytest.mark.parametrize("records, message", [
    ([{k: v for k, v in valid_row().items() if k != "origin"}], "record 0: missing field 'origin' (BYTES)"),
    ([valid_row(), valid_row(distance="far")], "record 1, field 'distance': expected a number (FP32), got \"far\""),
    ([valid_row(carrier=3)], "record 0, field 'carrier': expected a string (BYTES), got 3"),
    ([], "with at least one record"),
    (["row"], "record 0: expected an object of column: value, got str"),
])
def test_bad_record_is_refused_naming_record_and_field(model, records, message):
    with pytest.raises(BadRequest) as caught:
        decode_records(orjson.dumps({"records": records}), model)
    assert message in str(caught.value)


@pytest.mark.parametrize("rows", [
    [valid_row()],
    [valid_row(), valid_row(dep_hour=2.0), valid_row(carrier="ZZ", distance=99999.0)],
    [valid_row(prev_delay=None), valid_row(origin="BOS")],
    [valid_row(dep_hour=None)],
], ids=["in-range", "out-of-range", "nullable-and-unknown-category", "nan-not-allowed"])
@pytest.mark.parametrize("policy", ["reject", "flag"])
def test_python_and_numpy_value_checks_agree(model, rows, policy):
    def outcome(use_python):
        decoded = decode(body(rows).replace(b"null", b"NaN"), model)
        if not use_python:
            decoded.columns = None  # as for binary tensors or large requests
        try:
            return check_values(decoded, model, policy)
        except BadRequest as exc:
            return str(exc)

    assert outcome(True) == outcome(False)


@pytest.mark.parametrize("policy", ["reject", "flag"])
def test_list_and_array_checks_name_the_same_first_problem_when_a_request_has_several(model, policy):
    rows = [valid_row(dep_hour=2.0), valid_row(distance=None)]  # row 0 out of range, row 1 NaN where not nullable

    def refusal(use_lists):
        decoded = decode(body(rows).replace(b"null", b"NaN"), model)
        if not use_lists:
            decoded.columns = None  # as for binary tensors or large requests
        with pytest.raises(BadRequest) as caught:
            check_values(decoded, model, policy)
        return str(caught.value)

    assert refusal(use_lists=False) == refusal(use_lists=True)
