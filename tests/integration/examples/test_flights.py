"""The flights example end to end on a real Dask cluster: blend, split, train, evaluate, export, register, score."""

from __future__ import annotations

import pytest
import yaml

from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.registry import ModelRegistry

pytestmark = pytest.mark.integration


def test_the_flights_model_beats_its_baseline_passes_parity_and_is_registered(flights_dir, store, dask_client):
    path = flights_dir / "pipeline.yaml"
    first = run_pipeline(load_pipeline(path), store, dask_client).record
    stages = first["stages"]
    assert stages["ingest.flights"]["rows_in"] == 336_776
    assert {p: v["rows"] > 0 for p, v in stages["split"]["partitions"].items()} == dict.fromkeys(
        ["train", "validation", "test", "serve"], True)
    # Training read exactly the train and validation partitions, as fingerprinted by the split.
    assert stages["train"]["reads"] == {p: stages["split"]["partitions"][p] for p in ("train", "validation")}
    assert set(stages["evaluate"]["reads"]) == {"test"}
    metrics = first["metrics"]
    assert metrics["roc_auc"] > metrics["baseline"]["roc_auc"] + 0.1
    assert metrics["log_loss"] < metrics["baseline"]["log_loss"]
    assert stages["export"]["parity"]["passed"] and stages["export"]["parity"]["label_mismatches"] == 0
    assert (stages["register"]["version"], stages["register"]["created"]) == (1, True)
    assert stages["score"]["rows_out"] == stages["split"]["partitions"]["serve"]["rows"]

    again = run_pipeline(load_pipeline(path), store, dask_client).record
    assert (again["stages"]["register"]["version"], again["stages"]["register"]["created"]) == (1, False)
    assert again["stages"]["train"]["status"] == "cached"

    spec = yaml.safe_load(path.read_text())
    spec["model"]["params"]["max_iter"] = 40
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    changed = run_pipeline(load_pipeline(path), store, dask_client).record
    assert changed["stages"]["split"]["status"] == "cached" and changed["stages"]["train"]["status"] == "ran"
    assert (changed["stages"]["register"]["version"], changed["stages"]["register"]["created"]) == (2, True)
    assert ModelRegistry(store).versions("flights-delay") == [1, 2]
