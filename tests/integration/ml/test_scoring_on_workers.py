"""Batch scoring on real Dask worker processes: the same predictions as one whole run, one session per worker."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import onnxruntime as ort
import pytest

from orchestrator.ml import scoring_sessions
from orchestrator.ml.score import load_card, score_dataframe
from tests.support.tiny_models import build_model_folder, synthetic_frame

pytestmark = pytest.mark.integration


def test_partitions_scored_on_worker_processes_match_one_whole_run_with_one_session_per_worker(dask_client,
                                                                                            tmp_path):
    folder = build_model_folder(tmp_path / "model")
    frame, _ = synthetic_frame(3 * scoring_sessions.MIN_SLICE_ROWS, seed=5)
    session = ort.InferenceSession((folder / "model.onnx").read_bytes(), providers=["CPUExecutionProvider"])
    feeds = {name: frame[[name]].to_numpy(dtype=np.float32 if frame[name].dtype.kind == "f" else object)
             for name in frame.columns}
    labels, probabilities = session.run(None, feeds)

    scored = dask_client.compute(score_dataframe(folder, dd.from_pandas(frame, npartitions=4))).result()

    np.testing.assert_array_equal(scored["prediction"].to_numpy(), labels)
    np.testing.assert_allclose(scored[["proba_0", "proba_1"]].to_numpy(), probabilities, rtol=0, atol=1e-6)
    sha256 = load_card(folder)["files"]["model.onnx"]["sha256"]
    assert all(sha256 in models for models in dask_client.run(scoring_sessions.cached_models).values())
    threads = {address: info["nthreads"] for address, info in dask_client.scheduler_info()["workers"].items()}
    cores = {address: dask_client.submit(scoring_sessions.process_cores, workers=[address], pure=False).result()
             for address in threads}
    assert cores == threads
