"""The fast scoring path predicts exactly what the single-session path predicted, and shares the cores it is given."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pandas as pd
import pytest
from ml_data import synthetic_flights

from orchestrator.ml import scoring_sessions
from orchestrator.ml.score import load_card, score_partition


def scored_by_one_plain_session(folder, frame: pd.DataFrame) -> list[np.ndarray]:
    """The scoring path as it was: one run over the whole frame, feeds through the nullable Float64 conversion."""
    card = load_card(folder)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession((folder / "model.onnx").read_bytes(), options,
                                   providers=["CPUExecutionProvider"])
    feeds = {}
    for item in card["inputs"]:
        column = frame[item["name"]]
        if item["datatype"] == "FP32":
            feeds[item["name"]] = column.astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan).reshape(-1, 1)
        else:
            values = np.array([str(v) for v in column.astype(object)], dtype=object)
            values[column.isna().to_numpy()] = item.get("missing_value", "__missing__")
            feeds[item["name"]] = values.reshape(-1, 1)
    return session.run(None, feeds)


@pytest.fixture(scope="module")
def many_rows() -> pd.DataFrame:
    return synthetic_flights(4 * scoring_sessions.MIN_SLICE_ROWS + 11, 7).drop(columns=["delayed", "arr_delay"])


@pytest.fixture(scope="module")
def exported_regressor(partitions, tmp_path_factory):
    from ml_data import make_spec

    from orchestrator.ml.onnx_export import export_model
    from orchestrator.ml.train import fit_model

    spec = make_spec("sklearn.ensemble.HistGradientBoostingRegressor", task="regression", params={"max_iter": 10})
    model = fit_model(spec, partitions["train"], partitions["validation"]).model
    folder = tmp_path_factory.mktemp("regressor")
    export_model(spec, model, partitions["train"], partitions["test"], folder, {}, {})
    return folder


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(scoring_sessions, "process_cores", lambda: 4)


@pytest.mark.parametrize("family", ["rf", "hgb"])
def test_rows_scored_in_slices_get_exactly_the_predictions_of_one_whole_run(exported_models, many_rows, four_cores,
                                                                             family):
    folder = exported_models[family]["dir"]
    labels, probabilities = scored_by_one_plain_session(folder, many_rows)
    scored = score_partition(many_rows, (folder / "model.onnx").read_bytes(), load_card(folder), 3)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), labels)
    np.testing.assert_array_equal(scored[["proba_0", "proba_1"]].to_numpy(), probabilities)


def test_the_regressor_predicts_exactly_what_one_whole_run_predicts(exported_regressor, many_rows, four_cores):
    folder = exported_regressor
    (expected,) = scored_by_one_plain_session(folder, many_rows)
    scored = score_partition(many_rows, (folder / "model.onnx").read_bytes(), load_card(folder), None)
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), expected.reshape(-1))
    assert (scored["model_version"] == -1).all()


def test_scoring_adds_typed_columns_and_leaves_the_input_frame_as_it_was(exported_models, many_rows):
    folder = exported_models["rf"]["dir"]
    before = many_rows.copy()
    scored = score_partition(many_rows, (folder / "model.onnx").read_bytes(), load_card(folder), 2)
    pd.testing.assert_frame_equal(many_rows, before)
    assert list(scored.columns) == [*many_rows.columns, "prediction", "proba_0", "proba_1", "model_version"]
    assert [str(scored[c].dtype) for c in ["prediction", "proba_0", "proba_1", "model_version"]] == [
        "int64", "float32", "float32", "int64"]
    pd.testing.assert_frame_equal(scored[list(many_rows.columns)], many_rows)


@pytest.mark.parametrize("column", [
    pd.Series([1.5, np.nan, -2.25, 1e30]),
    pd.Series([0.1, 3.3], dtype="float32"),
    pd.Series([1, 2**53 + 1, -7]),
    pd.Series([1, None, 3], dtype="Int64"),
    pd.Series([0.3, None], dtype="Float64"),
    pd.Series([True, False]),
    pd.Series([True, None], dtype="boolean"),
    pd.Series([2.5, None], dtype="double[pyarrow]"),
], ids=["float64", "float32", "int64", "Int64", "Float64", "bool", "boolean", "double[pyarrow]"])
def test_every_numeric_column_type_becomes_the_float32_values_the_model_was_checked_with(column):
    from orchestrator.ml.score import _numeric_feed

    feed = _numeric_feed(column)
    assert feed.dtype == np.float32 and feed.shape == (len(column), 1) and feed.flags.c_contiguous
    np.testing.assert_array_equal(feed, column.astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
                                  .reshape(-1, 1))


def test_a_call_alone_uses_every_core_and_calls_side_by_side_share_them(four_cores):
    with scoring_sessions.scoring_call() as first:
        assert first == 4
        with scoring_sessions.scoring_call() as second:
            assert second == 2
            with scoring_sessions.scoring_call() as third, scoring_sessions.scoring_call() as fourth, \
                    scoring_sessions.scoring_call() as fifth:
                assert (third, fourth, fifth) == (1, 1, 1)
    with scoring_sessions.scoring_call() as alone_again:
        assert alone_again == 4


def test_small_batches_are_scored_in_one_piece_and_big_ones_in_one_slice_per_core_joined_in_row_order():
    seen: list[int] = []

    class RowNumbersSession:
        """Answers each row with its own value and twice it, as a label and a probability output would be."""

        def run(self, names, feeds):
            (x,) = feeds.values()
            seen.append(len(x))
            return [x.reshape(-1), np.hstack([x, 2 * x])]

    small = np.arange(100, dtype=np.float32).reshape(-1, 1)
    scoring_sessions.run_in_slices(RowNumbersSession(), {"x": small}, len(small), 4)
    assert seen == [100]
    seen.clear()
    rows = 3 * scoring_sessions.MIN_SLICE_ROWS
    big = np.arange(rows, dtype=np.float32).reshape(-1, 1)
    labels, pairs = scoring_sessions.run_in_slices(RowNumbersSession(), {"x": big}, rows, 4)
    assert seen == [scoring_sessions.MIN_SLICE_ROWS] * 3
    np.testing.assert_array_equal(labels, big.reshape(-1))
    np.testing.assert_array_equal(pairs, np.hstack([big, 2 * big]))


def test_one_session_per_model_is_built_in_a_process_whatever_the_threads_scoring(exported_models, many_rows):
    from concurrent.futures import ThreadPoolExecutor

    scoring_sessions.forget_sessions()
    folder = exported_models["hgb"]["dir"]
    model_bytes, card = (folder / "model.onnx").read_bytes(), load_card(folder)
    parts = np.array_split(np.arange(len(many_rows)), 6)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda rows: score_partition(many_rows.iloc[rows], model_bytes, card, 1), parts))
    assert scoring_sessions.cached_models() == [card["files"]["model.onnx"]["sha256"]]
    whole = score_partition(many_rows, model_bytes, card, 1)
    pd.testing.assert_frame_equal(pd.concat(results), whole)


def test_inside_a_dask_worker_scoring_uses_the_worker_threads_not_the_host_cores():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=5, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert client.submit(scoring_sessions.process_cores).result() == 5
