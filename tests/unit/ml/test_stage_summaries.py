"""The line `dataops run` prints for a model stage fits the task: a regressor's export reports how far its
predictions differ (there are no probabilities), and a classifier is measured against what its majority-class
baseline really scores (a constant prediction's roc_auc is 0.5 whatever the data)."""

from __future__ import annotations

import pandas as pd
from ml_data import make_spec

from orchestrator.cli.run import StageProgress
from orchestrator.ml.evaluate import evaluate_model
from orchestrator.ml.onnx_export import export_model
from orchestrator.ml.train import fit_model


def printed(capsys, stage: str, info: dict) -> str:
    StageProgress()(stage, "cached", info)
    return capsys.readouterr().err


def with_delay_band(frame: pd.DataFrame) -> pd.DataFrame:
    """Three classes: early, on time, late."""
    band = pd.cut(frame["arr_delay"].astype(float), [-1e9, -5, 5, 1e9], labels=["early", "on_time", "late"])
    return frame.assign(band=band.astype(str))


def test_a_regressors_export_reports_its_prediction_gap_not_a_probability_gap(partitions, tmp_path, capsys):
    spec = make_spec("sklearn.linear_model.Ridge", task="regression")
    model = fit_model(spec, partitions["train"], partitions["validation"]).model
    parity = export_model(spec, model, partitions["train"], partitions["test"], tmp_path, {}, {}).parity
    line = printed(capsys, "export", {"rows_in": parity["rows"], "parity": parity})
    assert f"ONNX parity on {parity['rows']:,} test rows: max prediction gap {parity['max_abs_diff']:.1e}" in line
    assert "probability" not in line and "label mismatches" not in line


def test_a_multi_class_model_is_shown_against_its_baselines_accuracy_and_log_loss(partitions, capsys):
    spec = make_spec(target="band")
    train, validation, test = (with_delay_band(partitions[p]) for p in ("train", "validation", "test"))
    model = fit_model(spec, train, validation).model
    metrics = evaluate_model(spec, model, test, train=train).metrics
    baseline = metrics["baseline"]
    line = printed(capsys, "evaluate", {"rows_in": len(test), "metrics": metrics})
    assert f"roc_auc {metrics['roc_auc']:.4f}" in line
    assert (f"(majority-class baseline accuracy {baseline['accuracy']:.4f}, log_loss {baseline['log_loss']:.4f})"
            in line)
    assert "baseline roc_auc" not in line


def test_a_regressor_is_still_shown_against_its_mean_baseline(partitions, capsys):
    spec = make_spec("sklearn.linear_model.Ridge", task="regression")
    model = fit_model(spec, partitions["train"], partitions["validation"]).model
    metrics = evaluate_model(spec, model, partitions["test"], train=partitions["train"]).metrics
    line = printed(capsys, "evaluate", {"metrics": metrics})
    assert f"rmse {metrics['rmse']:.4f}, mae {metrics['mae']:.4f}, r2 {metrics['r2']:.4f} (baseline rmse " in line
