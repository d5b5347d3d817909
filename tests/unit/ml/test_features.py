import numpy as np
import pandas as pd
import pytest

from orchestrator.errors import SchemaMismatch
from orchestrator.ml.features import build_pipeline, coerce_features, coerce_target, frame_fingerprint

from ml_data import make_spec


def test_extension_dtypes_become_float32_and_strings_with_a_missing_sentinel(partitions):
    X = coerce_features(make_spec(), partitions["train"])
    assert X["dep_hour"].dtype == np.float32 and X["distance"].dtype == np.float32
    assert X["distance"].isna().sum() == partitions["train"]["distance"].isna().sum() > 0
    assert all(isinstance(v, str) for v in X["carrier"])
    assert (X["carrier"] == "__missing__").sum() == partitions["train"]["carrier"].isna().sum() > 0
    assert set(X["carrier"]) <= {"AA", "UA", "DL", "B6", "__missing__"}


def test_datetimes_become_seconds_since_the_epoch_and_nat_becomes_nan():
    spec = make_spec()
    frame = pd.DataFrame({"dep_hour": pd.to_datetime(["1970-01-01 00:01:00", None]),
                          "distance": [1.0, 2.0], "carrier": ["AA", "UA"]})
    X = coerce_features(spec, frame)
    assert X["dep_hour"].iloc[0] == 60.0 and np.isnan(X["dep_hour"].iloc[1])


def test_a_boolean_target_becomes_integer_classes(partitions):
    y = coerce_target(make_spec(), partitions["train"])
    assert y.dtype == np.int64 and set(np.unique(y)) == {0, 1}


def test_a_missing_feature_column_is_named_in_the_error(partitions):
    with pytest.raises(SchemaMismatch, match="'distance'"):
        coerce_features(make_spec(), partitions["train"].drop(columns=["distance"]))


def test_a_text_column_declared_numeric_is_refused(partitions):
    frame = partitions["train"].assign(dep_hour="late")
    with pytest.raises(SchemaMismatch, match="'dep_hour' is declared numeric"):
        coerce_features(make_spec(), frame)


def test_linear_models_scale_numerics_and_tree_models_do_not():
    linear = build_pipeline(make_spec()).named_steps["prepare"].transformers[0][1]
    trees = build_pipeline(make_spec("sklearn.ensemble.RandomForestClassifier")).named_steps["prepare"].transformers[0][1]
    assert "scale" in linear.named_steps and "scale" not in trees.named_steps


def test_estimators_get_a_seed_so_a_rerun_trains_the_same_model():
    pipeline = build_pipeline(make_spec("sklearn.ensemble.RandomForestClassifier"))
    assert pipeline.named_steps["estimator"].random_state == 0


def test_fingerprints_change_with_content_but_not_with_the_index(partitions):
    train = partitions["train"]
    assert frame_fingerprint(train) == frame_fingerprint(train.set_axis(train.index + 1000))
    assert frame_fingerprint(train) != frame_fingerprint(train.iloc[1:])
