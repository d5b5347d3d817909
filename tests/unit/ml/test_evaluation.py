import numpy as np
import pandas as pd

from orchestrator.ml.evaluate import evaluate_model
from orchestrator.ml.train import fit_model
from ml_data import make_spec


def test_classification_metrics_include_a_baseline_the_model_beats(exported_models):
    metrics = exported_models["hgb"]["evaluation"].metrics
    for key in ("roc_auc", "pr_auc", "f1", "accuracy", "log_loss", "confusion_matrix", "calibration"):
        assert key in metrics, key
    assert metrics["baseline"]["strategy"] == "majority_class"
    assert metrics["baseline"]["roc_auc"] == 0.5
    assert metrics["roc_auc"] > metrics["baseline"]["roc_auc"] + 0.1
    assert metrics["log_loss"] < metrics["baseline"]["log_loss"]
    assert sum(map(sum, metrics["confusion_matrix"]["matrix"])) == metrics["rows"] == 300


def test_the_report_is_html_with_inline_svg_plots(exported_models):
    report = exported_models["lr"]["evaluation"].report_html
    assert report.startswith("<!doctype html>")
    assert report.count("<svg") >= 3  # ROC, calibration, feature importance
    assert "ROC curve" in report and "Feature importance" in report


def test_regression_metrics_compare_against_predicting_the_mean(partitions):
    spec = make_spec("sklearn.linear_model.Ridge", task="regression")
    model = fit_model(spec, partitions["train"], partitions["validation"]).model
    metrics = evaluate_model(spec, model, partitions["test"], train=partitions["train"]).metrics
    assert {"rmse", "mae", "r2"} <= set(metrics)
    assert metrics["baseline"]["strategy"] == "mean"
    assert metrics["rmse"] < metrics["baseline"]["rmse"]


def test_feature_importance_names_every_raw_column(exported_models):
    importance = exported_models["rf"]["evaluation"].metrics["feature_importance"]["mean"]
    assert set(importance) == {"dep_hour", "distance", "carrier"}
    assert max(importance, key=importance.get) == "dep_hour"  # the synthetic delay depends mostly on the hour


def _with_bands(frame):
    """A three-class target from the delay: early, on time, late."""
    bands = pd.cut(frame["arr_delay"].astype(float), [-np.inf, -5, 5, np.inf], labels=["early", "on_time", "late"])
    return frame.assign(band=pd.array(bands.astype(str), dtype="string[pyarrow]"))


def test_a_multi_class_model_is_evaluated_on_a_test_partition_lacking_a_class_it_learnt(partitions):
    # Common with time splits: a class seen in training never occurs in the test period.
    spec = make_spec(target="band")
    train, validation = _with_bands(partitions["train"]), _with_bands(partitions["validation"])
    test = _with_bands(partitions["test"])
    test = test[test["band"] != "early"]
    model = fit_model(spec, train, validation).model
    assert len(model.classes_) == 3

    metrics = evaluate_model(spec, model, test, train=train).metrics

    assert metrics["rows"] == len(test) and "log_loss" in metrics
    assert "roc_auc" not in metrics, "an AUC over a class absent from the test rows is undefined"
    assert set(metrics["feature_importance"]["mean"]) == {"dep_hour", "distance", "carrier"}
