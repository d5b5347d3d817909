"""ONNX input names for columns of any name: identifiers kept, others sanitised deterministically, the mapping in the
model card, parity and batch scoring feeding the graph by those names."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pandas as pd
import pytest

from orchestrator.ml.onnx_export import convert_to_onnx, export_model
from orchestrator.ml.onnx_names import onnx_input_names, rename_graph_inputs, sanitise
from orchestrator.ml.score import load_card, score_partition
from orchestrator.ml.spec import ModelSpec
from orchestrator.ml.train import fit_model
from ml_data import synthetic_flights

RENAMED = {"dep_hour": "Dep. hour (local)", "distance": "Größe", "carrier": "2nd carrier-ID"}


def odd_frame(rows: int, seed: int) -> pd.DataFrame:
    """The synthetic flights with odd column names, and an identifier column that the first one's sanitised name
    would collide with."""
    frame = synthetic_flights(rows, seed).rename(columns=RENAMED)
    frame["dep_hour_local"] = frame["Dep. hour (local)"]
    return frame


def odd_spec() -> ModelSpec:
    return ModelSpec.model_validate({
        "name": "odd-names", "task": "classification", "target": "delayed",
        "features": {"numeric": ["Dep. hour (local)", "Größe", "dep_hour_local"], "categorical": ["2nd carrier-ID"]},
        "estimator": "sklearn.linear_model.LogisticRegression",
    })


@pytest.fixture(scope="module")
def odd_export(tmp_path_factory):
    spec = odd_spec()
    train, validation, test = odd_frame(400, 1), odd_frame(100, 2), odd_frame(200, 3)
    fit = fit_model(spec, train, validation)
    folder = tmp_path_factory.mktemp("odd-names")
    result = export_model(spec, fit.model, train, test, folder, {}, {"run_id": "run-odd"})
    return {"spec": spec, "model": fit.model, "test": test, "folder": folder, "result": result}


def test_names_that_are_identifiers_are_kept_as_they_are():
    assert onnx_input_names(["dep_hour", "Distance", "_private", "x2"]) == {
        "dep_hour": "dep_hour", "Distance": "Distance", "_private": "_private", "x2": "x2"}


@pytest.mark.parametrize(("column", "expected"), [
    ("Amount (EUR)", "amount_eur"), ("unit.price", "unit_price"), ("Größe", "grosse"), ("région", "region"),
    ("a-b", "a_b"), ("Culmen Length (mm)", "culmen_length_mm"), ("Ærø Ø", "aero_o"), ("  spaced  out ", "spaced_out"),
])
def test_other_names_become_lower_case_ascii_with_underscores(column, expected):
    assert sanitise(column) == expected


@pytest.mark.parametrize(("column", "expected"), [("2nd try", "_2nd_try"), ("(€)", "input"), ("日本", "input"),
                                                  ("", "input"), ("42", "_42")])
def test_a_name_never_comes_out_empty_or_starting_with_a_digit(column, expected):
    assert sanitise(column) == expected


def test_names_that_collide_get_a_suffix_in_column_order_and_never_take_a_kept_or_reserved_name():
    names = onnx_input_names(["a b", "a-b", "a_b", "A.B", "label?"], reserved=frozenset({"label"}))
    assert names == {"a b": "a_b_2", "a-b": "a_b_3", "a_b": "a_b", "A.B": "a_b_4", "label?": "label_2"}
    assert onnx_input_names(["label"], reserved=frozenset({"label"})) == {"label": "label_2"}


def test_renaming_the_inputs_refuses_a_name_the_graph_already_uses(odd_export):
    graph = onnx.load(odd_export["folder"] / "model.onnx")
    taken = graph.graph.output[0].name
    with pytest.raises(ValueError, match="already values of the graph"):
        rename_graph_inputs(graph, [taken] + [value.name for value in graph.graph.input[1:]])


def test_a_model_of_columns_with_any_names_exports_with_parity_and_its_card_maps_each_to_its_onnx_input(odd_export):
    parity = odd_export["result"].parity
    assert parity["passed"] and parity["rows"] == 200 and parity["label_mismatches"] == 0
    graph = onnx.load(odd_export["folder"] / "model.onnx")
    expected = ["dep_hour_local_2", "grosse", "dep_hour_local", "_2nd_carrier_id"]
    assert [value.name for value in graph.graph.input] == expected
    card = json.loads((odd_export["folder"] / "model_card.json").read_text())
    assert [(item["name"], item["onnx_name"]) for item in card["inputs"]] == list(
        zip(["Dep. hour (local)", "Größe", "dep_hour_local", "2nd carrier-ID"], expected))
    assert set(card["reference_stats"]) == {"Dep. hour (local)", "Größe", "dep_hour_local", "2nd carrier-ID"}
    assert set(card["examples"]["inputs"][0]) == set(card["reference_stats"])
    assert "| Größe | grosse | FP32 |" in (odd_export["folder"] / "model_card.md").read_text()


def test_the_flights_columns_export_under_their_own_names(exported_models):
    card = json.loads((exported_models["lr"]["dir"] / "model_card.json").read_text())
    assert [(item["name"], item["onnx_name"]) for item in card["inputs"]] == [
        ("dep_hour", "dep_hour"), ("distance", "distance"), ("carrier", "carrier")]
    spec = exported_models["lr"]["spec"]
    graph = convert_to_onnx(spec, exported_models["lr"]["fit"].model)
    assert [value.name for value in graph.graph.input] == ["dep_hour", "distance", "carrier"]


def test_batch_scoring_reads_the_columns_and_feeds_the_graph_by_its_onnx_names(odd_export):
    folder, test = odd_export["folder"], odd_export["test"]
    card = load_card(folder)
    scored = score_partition(test, (folder / "model.onnx").read_bytes(), card, 1)
    from orchestrator.ml.features import coerce_features

    expected = odd_export["model"].predict(coerce_features(odd_export["spec"], test))
    assert np.array_equal(scored["prediction"].to_numpy(), expected)


def test_a_card_written_before_names_were_mapped_is_scored_by_its_column_names(exported_models, partitions):
    folder = exported_models["hgb"]["dir"]
    card = load_card(folder)
    for item in card["inputs"]:
        del item["onnx_name"]
    old = score_partition(partitions["serve"], (folder / "model.onnx").read_bytes(), card, 1)
    new = score_partition(partitions["serve"], (folder / "model.onnx").read_bytes(), load_card(folder), 1)
    assert old["prediction"].tolist() == new["prediction"].tolist()
    assert np.allclose(old["proba_1"], new["proba_1"])


def test_the_card_for_humans_keeps_its_inputs_table_whole_whatever_the_names(odd_export):
    from orchestrator.ml.card import render_markdown

    card = json.loads((odd_export["folder"] / "model_card.json").read_text())
    card["inputs"][0]["name"] = "in|out"
    row = next(line for line in render_markdown(card).splitlines() if line.startswith("| in"))
    assert row.startswith("| in\\|out | dep_hour_local_2 | FP32 |") and row.count(" | ") == 4
