"""A V2 request or tensor holding a field the protocol does not define is refused naming the field and the closest
known one: a misspelt option ("paramters", "output") is an error, not an option silently not taken. Records for
people may carry columns the model does not use (a row of a wider table); only the model's inputs are read."""

import orjson
import pytest
from support.tiny_models import v2_inputs, valid_row

from orchestrator.serving.codecs import decode_infer_request, decode_records
from orchestrator.serving.errors import BadRequest


def test_an_unknown_request_field_is_refused_with_the_closest_known_one(model):
    payload = orjson.dumps({"inputs": v2_inputs([valid_row()]), "output": [{"name": "label"}]})
    with pytest.raises(BadRequest, match=r"request: unknown field 'output' \(did you mean 'outputs'\?\)"):
        decode_infer_request(payload, None, model)


@pytest.mark.parametrize("position", [0, 3])
def test_an_unknown_tensor_field_is_refused_naming_the_input(model, position):
    inputs = v2_inputs([valid_row()])
    inputs[position]["paramters"] = {"binary_data_size": 4}
    name = inputs[position]["name"]
    with pytest.raises(BadRequest, match=rf"input '{name}': unknown field 'paramters' \(did you mean 'parameters'\?\)"):
        decode_infer_request(orjson.dumps({"inputs": inputs}), None, model)


def test_a_field_far_from_any_known_one_lists_the_protocols_fields(model):
    with pytest.raises(BadRequest, match="unknown field 'zzz'; the protocol's are id, inputs, outputs, parameters"):
        decode_infer_request(orjson.dumps({"inputs": v2_inputs([valid_row()]), "zzz": 1}), None, model)


def test_every_field_the_protocol_defines_is_accepted(model):
    inputs = v2_inputs([valid_row()])
    inputs[0]["parameters"] = {}
    payload = {"id": "r-1", "parameters": {}, "inputs": inputs, "outputs": [{"name": "label"}]}
    assert decode_infer_request(orjson.dumps(payload), None, model).request_id == "r-1"


def test_records_may_carry_columns_the_model_does_not_use(model):
    decoded = decode_records(orjson.dumps({"records": [{**valid_row(), "flight_id": 1234}]}), model)
    assert "flight_id" not in decoded.feeds and decoded.rows == 1
