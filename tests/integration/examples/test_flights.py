"""The flights example end to end on a real Dask cluster: blend, split, train, evaluate, export, register, score;
then on schedule, ticked by a fake clock into the same local store."""

from __future__ import annotations

import json

import pytest
import yaml

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.registry import ModelRegistry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def flights_store(tmp_path_factory) -> LocalStore:
    """One local store for the module: the scheduled runs find the stages the first test computed."""
    return LocalStore(tmp_path_factory.mktemp("flights-store"))


def test_the_flights_model_beats_its_baseline_passes_parity_and_is_registered(flights_dir, flights_store,
                                                                              dask_client):
    store = flights_store
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


def test_the_flights_pipeline_runs_on_schedule_into_the_local_store(flights_dir, flights_store, dask_client):
    from datetime import UTC, datetime

    from orchestrator.scheduling.state import ScheduleState
    from orchestrator.usecases.schedules import create_schedule, tick_schedules

    schedule = flights_dir / "nightly.yaml"
    schedule.write_text(f"name: nightly-flights\npipeline: pipeline.yaml\ncron: '30 2 * * *'\n"
                        f"timezone: Europe/Berlin\nscheduler: {dask_client.scheduler.address}\n")
    location = str(flights_store.root)
    create_schedule(schedule, location, now=datetime(2027, 6, 1, 0, 0, tzinfo=UTC))
    for day in (1, 2):  # 02:30 in Berlin is 00:30 UTC in summer
        report = tick_schedules(location, now=datetime(2027, 6, day, 0, 30, 20, tzinfo=UTC), runner="laptop")
        assert [o.action for o in report.outcomes] == ["succeeded"], report.to_dict()
    history = ScheduleState(flights_store, "nightly-flights").history()
    assert [(r.slot, r.status) for r in history] == [("2027-06-01T00:30:00Z", "succeeded"),
                                                     ("2027-06-02T00:30:00Z", "succeeded")]
    runs = [load_record(flights_store, r.run_ids[0]) for r in history]
    assert [run["parameters"]["as_of"] for run in runs] == ["2027-06-01T00:30:00Z", "2027-06-02T00:30:00Z"]
    assert all(run["status"] == "succeeded" and run["metrics"]["roc_auc"] > 0.6 for run in runs)


def test_raw_flights_are_prepared_as_a_run_prepares_them_and_scored_as_their_served_rows(flights_dir, flights_store,
                                                                                         dask_client, tmp_path):
    """`dataops predict --raw`: the flights of one served day, as the source holds them, go through the source's
    rules and steps, the joins with weather, planes and airlines, and the feature function; each flight then gets
    the prediction the run's score stage gave its prepared row, unless the server's contract refuses it."""
    import pandas as pd
    from typer.testing import CliRunner

    from orchestrator.cli.main import app

    record = run_pipeline(load_pipeline(flights_dir / "pipeline.yaml"), flights_store, dask_client).record
    flights = pd.read_parquet(flights_dir / "data" / "flights")
    flights[(flights["month"] == 12) & (flights["day"] == 1)].to_parquet(tmp_path / "day.parquet", index=False)
    result = CliRunner().invoke(app, [
        "predict", f"flights-delay:{record['stages']['register']['version']}", "--input", str(tmp_path / "day.parquet"),
        "--output", str(tmp_path / "scored"), "--store", str(flights_store.root),
        "--scheduler", dask_client.scheduler.address, "--raw", "--pipeline", str(flights_dir / "pipeline.yaml")])
    assert result.exit_code == 0, result.output

    made = json.loads((tmp_path / "scored" / "_prediction.json").read_text())
    assert [join["source"] for join in made["prepared_by"]["joins"]] == ["weather", "planes", "airlines"]
    assert made["prepared_by"]["joins"][0]["match_rate"] > 0.95, "the weather of the hour of departure"
    key = ["carrier", "flight", "time_hour"]
    scored = pd.read_parquet(tmp_path / "scored").set_index(key)
    served = pd.read_parquet(flights_store.dataset_path(record["stages"]["score"]["outputs"][0]["key"]) /
                             "predictions").set_index(key)
    assert len(scored) == made["rows"] > 600, "the day's flights that departed and arrived"
    accepted = scored[scored["refused"].isna()]
    assert len(accepted) > 0.9 * len(scored)
    assert scored.loc[scored["refused"].notna(), "prediction"].isna().all()
    same = served.loc[accepted.index]
    assert (accepted["prediction"].astype(int) == same["prediction"]).all()
    assert (accepted["proba_1"] - same["proba_1"]).abs().max() < 1e-6
