"""Inputs whose column names differ from their ONNX names: `/predict` records carry the columns' names (or the
ONNX names), V2 tensors the ONNX names, the metadata lists both; a card that maps no names serves as it always has."""

from __future__ import annotations

import json
import shutil

import orjson
import pytest
from support.tiny_models import CATEGORICAL, NUMERIC, v2_inputs, valid_row

from orchestrator.serving.codecs import check_values, decode_infer_request, decode_records
from orchestrator.serving.errors import BadRequest
from orchestrator.serving.model import load_model_folder
from orchestrator.serving.selfcheck import verify_card_examples

COLUMNS = {"dep_hour": "Dep. hour (local)", "carrier": "Träger-ID"}


@pytest.fixture(scope="module")
def renamed(model_folder, tmp_path_factory):
    """The tiny model with a card naming two of its inputs' columns otherwise, as the exporter writes it."""
    folder = shutil.copytree(model_folder, tmp_path_factory.mktemp("renamed") / "model")
    card = json.loads((folder / "model_card.json").read_text())
    for item in card["inputs"]:
        item["onnx_name"] = item["name"]
        item["name"] = COLUMNS.get(item["name"], item["name"])
    card["examples"]["inputs"] = [{COLUMNS.get(k, k): v for k, v in row.items()} for row in card["examples"]["inputs"]]
    (folder / "model_card.json").write_text(json.dumps(card))
    return load_model_folder(folder)


def records(*rows: dict, names=COLUMNS) -> bytes:
    return orjson.dumps({"records": [{names.get(k, k): v for k, v in row.items()} for row in rows]})


def test_the_metadata_lists_each_input_by_its_onnx_name_with_the_column_it_reads(renamed):
    inputs = {item["name"]: item for item in renamed.metadata()["inputs"]}
    assert inputs["dep_hour"] == {"name": "dep_hour", "datatype": "FP32", "shape": [-1, 1],
                                  "parameters": {"column": "Dep. hour (local)"}}
    assert inputs["carrier"]["parameters"] == {"column": "Träger-ID"}
    assert "parameters" not in inputs["distance"]


def test_records_carry_the_columns_names_or_the_onnx_names_and_score_alike(renamed, model):
    rows = [valid_row(), valid_row(carrier="UA", dep_hour=20.0)]
    by_column = decode_records(records(*rows), renamed)
    by_onnx_name = decode_records(records(*rows, names={}), renamed)
    old = decode_records(records(*rows, names={}), model)
    for decoded in (by_column, by_onnx_name):
        assert sorted(decoded.feeds) == sorted(NUMERIC + CATEGORICAL)
        assert renamed.run(decoded.feeds)["label"].tolist() == model.run(old.feeds)["label"].tolist()


def test_a_record_missing_a_column_or_holding_a_wrong_value_is_refused_by_the_columns_name(renamed):
    row = {k: v for k, v in valid_row().items() if k != "carrier"}
    with pytest.raises(BadRequest, match=r"record 0: missing field 'Träger-ID' \(BYTES\)"):
        decode_records(records(row), renamed)
    with pytest.raises(BadRequest, match=r"record 0, field 'Dep. hour \(local\)': expected a number \(FP32\)"):
        decode_records(records(valid_row(dep_hour="nine")), renamed)


def test_a_value_outside_the_training_range_names_the_input_and_its_column(renamed):
    decoded = decode_records(records(valid_row(dep_hour=99.0)), renamed)
    with pytest.raises(BadRequest, match=r"input 'dep_hour' \(column 'Dep. hour \(local\)'\), row 0: expected a "
                                         r"value in the training range"):
        check_values(decoded, renamed, "reject")


def test_v2_tensors_use_the_onnx_names_and_a_columns_name_is_refused_naming_its_input(renamed):
    tensors = v2_inputs([valid_row()])
    decoded = decode_infer_request(orjson.dumps({"inputs": tensors}), None, renamed)
    assert sorted(decoded.feeds) == sorted(NUMERIC + CATEGORICAL)
    tensors[0] = {**tensors[0], "name": "Dep. hour (local)"}
    with pytest.raises(BadRequest) as refused:
        decode_infer_request(orjson.dumps({"inputs": tensors}), None, renamed)
    assert str(refused.value) == ("unknown input 'Dep. hour (local)': V2 tensors use ONNX input names; column "
                                  "'Dep. hour (local)' is input 'dep_hour' of model 'flights-delay'")


def test_the_self_check_scores_the_card_examples_written_with_the_columns_names(renamed):
    assert verify_card_examples(renamed) == 1


def test_a_model_exported_before_names_were_mapped_loads_and_answers_exactly_as_before(model_folder, model):
    card = json.loads((model_folder / "model_card.json").read_text())
    assert all("onnx_name" not in item for item in card["inputs"])
    assert [spec.column for spec in model.card.inputs] == [spec.name for spec in model.card.inputs]
    assert model.metadata()["inputs"] == [{"name": name, "datatype": "FP32" if name in NUMERIC else "BYTES",
                                           "shape": [-1, 1]} for name in NUMERIC + CATEGORICAL]
    rows = [valid_row(), valid_row(origin="LGA", distance=2500.0)]
    from_records = model.run(decode_records(records(*rows, names={}), model).feeds)
    from_tensors = model.run(decode_infer_request(orjson.dumps({"inputs": v2_inputs(rows)}), None, model).feeds)
    assert from_records["label"].tolist() == from_tensors["label"].tolist()
    with pytest.raises(BadRequest, match=r"unknown input 'departure': model 'flights-delay' expects inputs \[dep_hour"):
        decode_infer_request(orjson.dumps({"inputs": [{**v2_inputs(rows)[0], "name": "departure"}]}), None, model)
    decoded = decode_records(records(valid_row(dep_hour=99.0), names={}), model)
    with pytest.raises(BadRequest, match=r"^input 'dep_hour', row 0: expected a value in the training range"):
        check_values(decoded, model, "reject")


def test_captures_record_the_inputs_by_the_columns_names_as_the_reference_profile_names_them(renamed, model):
    decoded = decode_records(records(valid_row()), renamed)
    assert sorted(renamed.by_column(decoded.feeds)) == sorted(["Dep. hour (local)", "distance", "prev_delay",
                                                               "Träger-ID", "origin"])
    old = decode_records(records(valid_row(), names={}), model)
    assert model.by_column(old.feeds) is old.feeds
