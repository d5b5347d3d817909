import dask
import dask.dataframe as dd
import numpy as np
import pytest

from orchestrator.errors import SchemaMismatch
from orchestrator.ml import scoring_sessions
from orchestrator.ml.features import coerce_features
from orchestrator.ml.score import score_dataframe


def test_scoring_adds_predictions_equal_to_the_trained_models(exported_models, partitions):
    folder, model = exported_models["hgb"]["dir"], exported_models["hgb"]["fit"].model
    serve = partitions["serve"].drop(columns=["delayed", "arr_delay"])
    scored = score_dataframe(folder, dd.from_pandas(serve, npartitions=3))
    assert list(scored.columns) == [*serve.columns, "prediction", "proba_0", "proba_1", "model_version"]
    result = scored.compute(scheduler="threads")
    X = coerce_features(exported_models["hgb"]["spec"], serve)
    assert (result["prediction"].to_numpy() == model.predict(X)).all()
    np.testing.assert_allclose(result["proba_1"].to_numpy(), model.predict_proba(X)[:, 1], atol=1e-5)


def test_one_session_per_process_serves_every_partition(exported_models, partitions):
    scoring_sessions.forget_sessions()
    serve = partitions["serve"].drop(columns=["delayed"])
    score_dataframe(exported_models["lr"]["dir"], dd.from_pandas(serve, npartitions=5)).compute(scheduler="threads")
    assert len(scoring_sessions.cached_models()) == 1


def test_a_missing_input_column_is_named_before_any_work(exported_models, partitions):
    serve = dd.from_pandas(partitions["serve"].drop(columns=["carrier"]), npartitions=2)
    with pytest.raises(SchemaMismatch, match="input column 'carrier' is missing"):
        score_dataframe(exported_models["lr"]["dir"], serve)


def test_a_text_column_where_the_model_expects_numbers_is_refused(exported_models, partitions):
    serve = dd.from_pandas(partitions["serve"].assign(distance="far"), npartitions=2)
    with pytest.raises(SchemaMismatch, match="'distance' has type .* expects numbers"):
        score_dataframe(exported_models["lr"]["dir"], serve)


def test_scoring_is_lazy_and_partitioned(exported_models, partitions):
    serve = dd.from_pandas(partitions["serve"], npartitions=4)
    scored = score_dataframe(exported_models["rf"]["dir"], serve)
    assert scored.npartitions == 4
    with dask.config.set(scheduler="sync"):
        assert len(scored) == len(partitions["serve"])
