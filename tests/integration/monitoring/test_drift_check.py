"""`dataops drift check` on a real served model: a pipeline run registers it with its reference profile, `dataops
serve` captures what it is sent into the store, and the check through the CLI counts those captures and decides.

Rows from the serve partition are no drift; the same rows with the most important feature shifted by 0.8 reference
deviations are drift naming it (exit 20); a window below the policy's ``min_rows`` is insufficient data (exit 21).
Once with a local store, once with Swift on the control plane.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app as dataops
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.registry.models import ModelRegistry
from tests.conftest import write
from tests.support.live_server import BIN, RunningServer, free_port

pytestmark = pytest.mark.integration

MODEL_NAME = "store-load"
FED_ROWS = 600
MIN_ROWS = 500
PIPELINE = f"""
name: store-load
sources:
  visits:
    location: visits.csv
    validation:
      columns:
        ts: {{type: datetime, not_null: true}}
split:
  by: time
  column: ts
  boundaries: {{train: "2024-08-01", validation: "2024-09-15", test: "2024-10-15"}}
  key: [visit_id]
model:
  name: {MODEL_NAME}
  task: classification
  target: busy
  features: {{numeric: [load, size], categorical: [region]}}
  estimator: sklearn.linear_model.LogisticRegression
monitoring:
  min_rows: {MIN_ROWS}
"""


def make_visits(folder, rows: int = 8000) -> None:
    """A year of visits; whether the store is busy depends mostly on ``load``."""
    rng = np.random.default_rng(11)
    load = rng.normal(50, 10, rows)
    size = rng.gamma(3.0, 20.0, rows)
    region = rng.choice(["north", "south", "east"], rows, p=[0.5, 0.3, 0.2])
    logit = 0.3 * (load - 50) + 0.005 * (size - 60) + np.where(region == "north", 0.3, 0.0)
    pd.DataFrame({
        "visit_id": np.arange(rows),
        "ts": pd.date_range("2024-01-01", "2024-12-31", periods=rows).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load": load.round(3), "size": size.round(3), "region": region,
        "busy": rng.random(rows) < 1 / (1 + np.exp(-logit)),
    }).to_csv(folder / "visits.csv", index=False)


def _swift_param():
    return pytest.param("swift", marks=pytest.mark.openstack)


@pytest.fixture(scope="module", params=["local", _swift_param()])
def store_location(request, tmp_path_factory):
    """Where the registry, the captures and the drift results live: a local folder, or a fresh Swift container."""
    if request.param == "local":
        yield str(tmp_path_factory.mktemp("drift-store"))
        return
    cloud = request.getfixturevalue("cloud")
    container = f"dataops-test-drift-{uuid.uuid4().hex[:8]}"
    yield f"swift://{container}/drift"
    from support.swift_cleanup import remove_container

    remove_container(cloud, container)


@pytest.fixture(scope="module")
def served(store_location, tmp_path_factory, dask_client):
    """The pipeline run once into the store, and `dataops serve` of its model capturing every request there."""
    from orchestrator.artifacts.open import open_store

    folder = tmp_path_factory.mktemp("store-load")
    make_visits(folder)
    store = open_store(store_location)
    record = run_pipeline(load_pipeline(write(folder / "pipeline.yaml", PIPELINE)), store, dask_client).record
    version = record["stages"]["register"]["version"]
    split = store.dataset_path(record["stages"]["split"]["outputs"][0]["key"])
    serve_rows = pd.read_parquet(split / "serve")[["load", "size", "region"]]
    assert len(serve_rows) >= FED_ROWS
    server = RunningServer(
        [str(BIN / "dataops"), "serve", f"{MODEL_NAME}:{version}", "--store", store_location,
         "--capture-store", store_location, "--capture-rate", "1.0", "--range-policy", "flag"],
        free_port(), folder / "server.log")
    try:
        server.wait_ready(120)
        yield {"store": store, "location": store_location, "version": version, "server": server,
               "rows": serve_rows.iloc[:FED_ROWS].reset_index(drop=True)}
    finally:
        server.stop()


def feed(served, rows: pd.DataFrame) -> str:
    """Send ``rows`` to the server in requests of 100, wait until all are captured; return when feeding began."""
    started = dt.datetime.now(dt.timezone.utc)
    server = served["server"]
    records = json.loads(rows.to_json(orient="records"))
    for first in range(0, len(records), 100):
        status, body = server.json("POST", f"/v2/models/{MODEL_NAME}/predict", {"records": records[first:first + 100]})
        assert status == 200, body
    store, prefix = served["store"], f"captures/{MODEL_NAME}/{served['version']}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        captured = sum(1 for key in store.list(prefix) for line in store.get_bytes(key).splitlines()
                       if pd.Timestamp(json.loads(line)["ts"]) >= started)
        if captured >= len(records):
            return started.isoformat()
        time.sleep(0.5)
    raise AssertionError(f"{len(records)} rows sent, {captured} captured after 30 s:\n{server.log_text()}")


def drift_check(served, *args: str):
    result = CliRunner().invoke(dataops, ["drift", "check", MODEL_NAME, "--store", served["location"], *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


def stored(served, check_id: str, name: str) -> bytes:
    key = f"monitoring/{MODEL_NAME}/{served['version']}/checks/{check_id}/{name}"
    return served["store"].get_bytes(key)


def test_rows_from_the_serve_partition_are_no_drift_with_figures_and_a_stored_result_and_report(served):
    since = feed(served, served["rows"])

    result = drift_check(served, "--since", since)

    assert result.exit_code == 0, result.output
    assert "no drift" in result.output
    for column in ("load", "size", "region", "prediction"):
        assert column in result.output
    listed = json.loads(CliRunner().invoke(dataops, ["drift", "check", MODEL_NAME, "--store", served["location"],
                                                     "--since", since, "--json"]).stdout)
    assert listed["verdict"] == "no_drift" and listed["window"]["rows"] == FED_ROWS
    saved = json.loads(stored(served, listed["check_id"], "result.json"))
    assert saved == listed
    model = ModelRegistry(served["store"]).card(f"{MODEL_NAME}:{served['version']}")
    assert saved["lineage"]["model"] == {"name": MODEL_NAME, "version": served["version"],
                                         "sha256": model["files"]["model.onnx"]["sha256"]}
    assert saved["lineage"]["captures"]["keys"] and all(
        k.startswith(f"captures/{MODEL_NAME}/{served['version']}/") for k in saved["lineage"]["captures"]["keys"])
    assert saved["window"]["since"].startswith(since[:19])
    load = next(c for c in saved["result"]["columns"] if c["name"] == "load")
    assert load["verdict"] == "no_drift" and load["rows"] == FED_ROWS
    assert next(s for s in load["statistics"] if s["name"] == "wasserstein_std")["value"] < 0.1
    report = stored(served, listed["check_id"], "report.html").decode()
    assert report.startswith("<!DOCTYPE html>") and "load" in report and "<svg" in report
    latest = json.loads(served["store"].get_bytes(f"monitoring/{MODEL_NAME}/{served['version']}/latest.json"))
    assert latest["check_id"] == listed["check_id"]


def test_the_most_important_feature_shifted_by_more_than_half_a_sigma_is_drift_naming_it(served):
    shifted = served["rows"].copy()
    shifted["load"] = shifted["load"] + 8.0  # 0.8 reference deviations (sigma 10)
    since = feed(served, shifted)

    result = drift_check(served, "--since", since)

    assert result.exit_code == 20, result.output
    assert "important feature(s) drifted: load" in result.output
    drifted_rows = [line for line in result.output.splitlines() if line.strip("│ ").startswith("load")]
    assert any("wasserstein_std" in line and " drift " in line for line in drifted_rows), result.output


def test_a_window_below_min_rows_is_insufficient_data_not_drift(served):
    result = drift_check(served, "--last-rows", "100")

    assert result.exit_code == 21, result.output
    assert "insufficient data" in result.output and f"fewer than the {MIN_ROWS}" in result.output


def test_the_report_command_draws_every_stored_check_of_the_version(served, tmp_path):
    output = tmp_path / "report.html"

    result = CliRunner().invoke(dataops, ["drift", "report", f"{MODEL_NAME}:{served['version']}", "--store",
                                          served["location"], "--output", str(output)])

    assert result.exit_code == 0, result.output
    page = output.read_text()
    checks = [k for k in served["store"].list(f"monitoring/{MODEL_NAME}/{served['version']}/checks/")
              if k.endswith("/result.json")]
    assert "Drift of store-load" in page and "http://" not in page and "https://" not in page
    assert f"each statistic over the last {len(checks)} checks" in page
