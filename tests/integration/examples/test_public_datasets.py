"""Data the project did not write, as PyPI packages ship it, end to end through the CLI: each example pipeline runs
on the session's cluster, then `dataops predict` and a real `dataops serve` score every row of its serve partition
and agree on each one.

- examples/seattle: Seattle's daily weather (vega_datasets), dates written 2012/01/01 in local time, a label of
  five classes on a time split whose test period lacks two of them (no snow, no drizzle);
- examples/penguins: the Palmer penguins' raw records (palmerpenguins), column names with spaces and parentheses,
  `NA` for missing values, a regression of body mass.
"""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.open import open_store
from orchestrator.cli.main import app
from tests.support.live_server import BIN, RunningServer, free_port

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def run_example(name: str, folder: Path, scheduler: str) -> tuple[Path, dict]:
    """Copy the example, lay out its data with its own get_data.py, run it; return its store and run record."""
    shutil.copytree(EXAMPLES / name, folder, ignore=shutil.ignore_patterns("data", "__pycache__"))
    runpy.run_path(str(folder / "get_data.py"), run_name="get_data").get("main")(folder / "data")
    store = folder / "store"
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(folder / "pipeline.yaml"), "--store", str(store), "--scheduler", scheduler])
    assert result.exit_code == 0, result.output
    shown = runner.invoke(app, ["runs", "show", result.stdout.strip(), "--store", str(store), "--json"])
    return store, json.loads(shown.stdout)


def serve_rows(store: Path, record: dict, columns: list[str]) -> pd.DataFrame:
    split = record["stages"]["split"]["outputs"][0]["key"]
    rows = pd.read_parquet(open_store(str(store)).dataset_path(split) / "serve")
    return rows[columns].reset_index(drop=True)


def predict_and_serve(store: Path, model: str, rows: pd.DataFrame, folder: Path, scheduler: str) -> tuple[list, list]:
    """Every row scored by `dataops predict` and by the server's /predict; both lists of predictions, in row order."""
    rows.to_parquet(folder / "rows.parquet", index=False)
    result = CliRunner().invoke(app, ["predict", model, "--input", str(folder / "rows.parquet"),
                                      "--output", str(folder / "scored"), "--store", str(store),
                                      "--scheduler", scheduler])
    assert result.exit_code == 0, result.output
    predicted = pd.read_parquet(folder / "scored")["prediction"].tolist()
    server = RunningServer([str(BIN / "dataops"), "serve", model, "--store", str(store), "--range-policy", "flag"],
                           free_port(), folder / "server.log")
    try:
        server.wait_ready(120)
        records = json.loads(rows.to_json(orient="records", date_format="iso", force_ascii=False))
        status, answer = server.json("POST", f"/v2/models/{model}/predict", {"records": records})
        assert status == 200, answer
    finally:
        server.stop()
    served = answer.get("labels", answer.get("values"))  # a classifier's labels, a regressor's values
    assert served is not None, answer
    return predicted, served


def test_seattle_weather_runs_with_classes_missing_from_test_and_predict_agrees_with_the_server(tmp_path,
                                                                                                 dask_client):
    scheduler = dask_client.scheduler.address
    store, record = run_example("seattle", tmp_path / "seattle", scheduler)
    partitions = record["stages"]["split"]["partitions"]
    assert partitions["train"]["rows"] > 800 and partitions["test"]["rows"] > 100 and partitions["serve"]["rows"] > 100
    assert record["stages"]["ingest.days"]["quarantined"] == 0, "every 2012/01/01 date parsed"
    metrics = record["metrics"]
    assert 0 < metrics["accuracy"] <= 1 and np.isfinite(metrics["log_loss"]), "a test lacking classes is evaluated"
    assert record["stages"]["export"]["parity"]["passed"]

    features = ["precipitation", "temp_max", "temp_min", "wind", "temp_range", "day_of_year", "precipitation_lag1",
                "precipitation_lag2", "temp_max_lag1", "precipitation_sum_7d", "wind_mean_3r"]
    rows = serve_rows(store, record, features)
    predicted, served = predict_and_serve(store, "seattle-weather", rows, tmp_path, scheduler)
    assert len(predicted) == len(served) == len(rows)
    assert [str(p) for p in predicted] == [str(s) for s in served]
    assert set(map(str, predicted)) <= {"drizzle", "fog", "rain", "snow", "sun"}


def test_the_raw_penguins_with_spaced_names_and_na_markers_regress_and_predict_agrees_with_the_server(tmp_path,
                                                                                                        dask_client):
    scheduler = dask_client.scheduler.address
    store, record = run_example("penguins", tmp_path / "penguins", scheduler)
    assert record["stages"]["ingest.penguins"]["rows_in"] == 344
    metrics = record["metrics"]
    assert metrics["rmse"] < 0.7 * metrics["baseline"]["rmse"], "the measurements say much about the mass"
    assert record["stages"]["export"]["parity"]["passed"]

    features = ["Culmen Length (mm)", "Culmen Depth (mm)", "Flipper Length (mm)", "Species", "Island", "Sex"]
    rows = serve_rows(store, record, features)
    assert len(rows) > 30 and rows["Sex"].isna().any(), "rows whose sex was not recorded are scored by both"
    predicted, served = predict_and_serve(store, "penguins-body-mass", rows, tmp_path, scheduler)
    assert len(predicted) == len(served) == len(rows)
    np.testing.assert_allclose(np.asarray(predicted, dtype=float), np.asarray(served, dtype=float), rtol=1e-5)
