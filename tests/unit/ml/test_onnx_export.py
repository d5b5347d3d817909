import json

import numpy as np
import onnx
import pytest

from orchestrator.artifacts.store import sha256_of_file
from orchestrator.errors import ParityFailed
from orchestrator.ml import onnx_export
from orchestrator.ml.converters import _ints_for_bools
from orchestrator.ml.evaluate import evaluate_model
from orchestrator.ml.onnx_export import export_model
from orchestrator.ml.train import fit_model
from ml_data import make_spec


@pytest.mark.parametrize("family", ["lr", "rf", "hgb"])
def test_logistic_regression_random_forest_and_gradient_boosting_export_and_pass_parity(exported_models, family):
    parity = exported_models[family]["export"].parity
    assert parity["passed"] and parity["rows"] == 300
    assert parity["label_mismatches"] == 0
    assert parity["max_abs_proba_diff"] <= 1e-4


def test_the_onnx_graph_takes_typed_raw_columns_by_name_and_outputs_plain_probabilities(exported_models):
    graph = onnx.load(exported_models["hgb"]["dir"] / "model.onnx")
    onnx.checker.check_model(graph)
    inputs = {i.name: (i.type.tensor_type.elem_type, [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim])
              for i in graph.graph.input}
    assert inputs["dep_hour"][0] == onnx.TensorProto.FLOAT and inputs["carrier"][0] == onnx.TensorProto.STRING
    assert inputs["dep_hour"][1][1] == 1
    outputs = {o.name: o.type.tensor_type.elem_type for o in graph.graph.output}
    assert outputs == {"label": onnx.TensorProto.INT64, "probabilities": onnx.TensorProto.FLOAT}


def test_the_model_card_follows_the_model_folder_contract(exported_models):
    folder = exported_models["rf"]["dir"]
    card = json.loads((folder / "model_card.json").read_text())
    assert [i["name"] for i in card["inputs"]] == ["dep_hour", "distance", "carrier"]
    dep_hour = card["inputs"][0]
    assert dep_hour["datatype"] == "FP32" and dep_hour["min"] == 5.0 and dep_hour["max"] == 23.0
    assert card["inputs"][2]["datatype"] == "BYTES" and "__missing__" in card["inputs"][2]["allowed"]
    assert card["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [-1]},
                               {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}]
    assert card["classes"] == [0, 1]
    assert card["files"]["model.onnx"]["sha256"] == sha256_of_file(folder / "model.onnx")
    assert card["parity"]["passed"] is True and card["parity"]["tolerance"] == 1e-4
    assert card["reference_stats"]["dep_hour"]["kind"] == "numeric"
    assert sum(card["reference_stats"]["dep_hour"]["histogram"]["counts"]) == 600
    assert card["reference_stats"]["carrier"]["kind"] == "categorical"
    assert card["lineage"]["training_data"]["train"]["rows"] == 600
    assert {"scikit-learn", "skl2onnx", "onnxruntime"} <= set(card["library_versions"])
    assert len(card["examples"]["inputs"]) == 2 and len(card["examples"]["outputs"]["probabilities"]) == 2
    for name in ("model_card.md", "metrics.json", "report.html"):
        assert (folder / name).is_file()
    assert "## ONNX parity" in (folder / "model_card.md").read_text()


def test_a_broken_conversion_fails_parity_naming_the_worst_rows(partitions, tmp_path, monkeypatch):
    spec = make_spec()
    model = fit_model(spec, partitions["train"], partitions["validation"]).model
    real_convert = onnx_export.convert_to_onnx

    def convert_with_wrong_coefficients(spec, model):
        # A converter bug in miniature: the graph carries different weights than the fitted model.
        import copy

        broken = copy.deepcopy(model)
        broken.named_steps["estimator"].coef_ = broken.named_steps["estimator"].coef_ * 1.5
        return real_convert(spec, broken)

    monkeypatch.setattr(onnx_export, "convert_to_onnx", convert_with_wrong_coefficients)
    with pytest.raises(ParityFailed) as failure:
        export_model(spec, model, partitions["train"], partitions["test"], tmp_path / "m", {}, {})
    message = str(failure.value)
    assert "does not match scikit-learn" in message and "> tolerance 0.0001" in message
    assert "Worst rows:" in message and '"sklearn_proba"' in message and '"onnx_proba"' in message
    assert not (tmp_path / "m" / "model.onnx").exists()


def test_regressors_export_a_variable_output_and_pass_parity(partitions, tmp_path):
    spec = make_spec("sklearn.ensemble.HistGradientBoostingRegressor", task="regression", params={"max_iter": 10})
    model = fit_model(spec, partitions["train"], partitions["validation"]).model
    metrics = evaluate_model(spec, model, partitions["test"]).metrics
    result = export_model(spec, model, partitions["train"], partitions["test"], tmp_path, metrics, {})
    assert result.parity["passed"]
    assert result.card["outputs"] == [{"name": "variable", "datatype": "FP32", "shape": [-1, 1]}]


def test_the_converter_fix_turns_boolean_list_attributes_into_integers():
    fixed = _ints_for_bools({"nodes_missing_value_tracks_true": [np.uint8(1), False, True], "name": "x",
                             "nodes_values": [0.5, 1.5]})
    assert fixed["nodes_missing_value_tracks_true"] == [1, 0, 1]
    assert all(type(v) is not bool for v in fixed["nodes_missing_value_tracks_true"])
    assert fixed["nodes_values"] == [0.5, 1.5] and fixed["name"] == "x"


def test_string_class_labels_export_as_a_string_label_output(partitions, tmp_path):
    frame = {k: v.assign(delayed=v["delayed"].map({True: "late", False: "on-time"}).astype("string"))
             for k, v in partitions.items()}
    spec = make_spec("sklearn.ensemble.HistGradientBoostingClassifier", params={"max_iter": 5})
    model = fit_model(spec, frame["train"], frame["validation"]).model
    result = export_model(spec, model, frame["train"], frame["test"], tmp_path, {}, {})
    assert result.parity["passed"]
    assert result.card["outputs"][0]["datatype"] == "BYTES" and result.card["classes"] == ["late", "on-time"]
