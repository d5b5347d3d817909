"""Data the project did not write, as PyPI packages ship it, end to end through the CLI: each example pipeline runs
on the session's cluster, then `dataops predict` and a real `dataops serve` score every row of its serve partition
and agree on each one, under either range policy; `dataops predict --raw` prepares the source's own rows as the
pipeline does and scores the served rows as their prepared rows.

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


def predict(store: Path, model: str, input: Path, output: Path, scheduler: str, *options: str) -> pd.DataFrame:
    result = CliRunner().invoke(app, ["predict", model, "--input", str(input), "--output", str(output),
                                      "--store", str(store), "--scheduler", scheduler, *options])
    assert result.exit_code == 0, result.output
    return pd.read_parquet(output)


def _flags(cell) -> list[str]:
    """An ``out_of_range`` cell (a JSON array of column names, or null) as a sorted list."""
    return [] if cell is None or cell is pd.NA else sorted(json.loads(cell))


def assert_predict_agrees_with_the_server(store: Path, model: str, rows: pd.DataFrame, folder: Path,
                                          scheduler: str) -> pd.DataFrame:
    """Under either range policy, `dataops predict` and a real `dataops serve` give every row the same outcome:
    the same prediction, or the same refusal with the same message (the server hears each row alone), and under
    "flag" the same columns outside the training range. Returns predict's rows under "reject"."""
    rows.to_parquet(folder / "rows.parquet", index=False)
    records = json.loads(rows.to_json(orient="records", date_format="iso", force_ascii=False))
    outcomes = {}
    for policy in ("reject", "flag"):
        scored = predict(store, model, folder / "rows.parquet", folder / f"scored-{policy}", scheduler,
                         "--range-policy", policy)
        assert len(scored) == len(rows)
        server = RunningServer([str(BIN / "dataops"), "serve", model, "--store", str(store), "--range-policy",
                                policy], free_port(), folder / f"server-{policy}.log")
        try:
            server.wait_ready(120)
            answers = [server.json("POST", f"/v2/models/{model}/predict", {"records": [one]}) for one in records]
        finally:
            server.stop()
        for position, (status, answer) in enumerate(answers):
            row = scored.iloc[position]
            if status == 400:
                assert row["refused"] == answer["error"], (policy, position)
                assert pd.isna(row["prediction"]), (policy, position)
                continue
            assert status == 200 and pd.isna(row["refused"]), (policy, position, answer)
            served = answer["labels"][0] if "labels" in answer else answer["values"][0]
            if isinstance(served, str):
                assert row["prediction"] == served, (policy, position)
            else:
                np.testing.assert_allclose(row["prediction"], served, rtol=1e-5, err_msg=f"{policy} {position}")
            if policy == "flag":
                assert _flags(row["out_of_range"]) == sorted(answer.get("out_of_range", {})), (policy, position)
        outcomes[policy] = scored
    refused = outcomes["reject"]["refused"].notna()
    assert (outcomes["flag"]["refused"].notna() <= refused).all(), "flag refuses only what reject refuses"
    return outcomes["reject"]


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
    rows = serve_rows(store, record, [*features, "date"])
    scored = assert_predict_agrees_with_the_server(store, "seattle-weather", rows[features], tmp_path, scheduler)
    assert set(scored["prediction"].dropna()) <= {"drizzle", "fog", "rain", "snow", "sun"}

    # The source's own rows, prepared by the pipeline (dates in local time, derived and window features over the
    # whole history) score the served days exactly as their prepared rows did.
    raw = predict(store, "seattle-weather", tmp_path / "seattle" / "data" / "seattle-weather.csv", tmp_path / "raw",
                  scheduler, "--raw")
    by_date = raw.set_index("date")["prediction"]
    assert by_date.loc[rows["date"]].tolist() == scored["prediction"].tolist()


def test_the_raw_penguins_with_spaced_names_and_na_markers_regress_and_predict_agrees_with_the_server(tmp_path,
                                                                                                        dask_client):
    scheduler = dask_client.scheduler.address
    store, record = run_example("penguins", tmp_path / "penguins", scheduler)
    assert record["stages"]["ingest.penguins"]["rows_in"] == 344
    metrics = record["metrics"]
    assert metrics["rmse"] < 0.7 * metrics["baseline"]["rmse"], "the measurements say much about the mass"
    assert record["stages"]["export"]["parity"]["passed"]

    features = ["Culmen Length (mm)", "Culmen Depth (mm)", "Flipper Length (mm)", "Species", "Island", "Sex"]
    rows = serve_rows(store, record, [*features, "bird"])
    assert len(rows) > 30 and rows["Sex"].isna().any(), "rows whose sex was not recorded are scored by both"
    scored = assert_predict_agrees_with_the_server(store, "penguins-body-mass", rows[features], tmp_path, scheduler)

    # The raw records, with `NA` markers and out-of-range values, through the source's rules and steps: a bird's
    # prediction is its prepared row's, and what the rules refuse is kept with the reason.
    raw = predict(store, "penguins-body-mass", tmp_path / "penguins" / "data" / "penguins-raw.csv", tmp_path / "raw",
                  scheduler, "--raw")
    by_bird = raw.set_index("bird")["prediction"]
    np.testing.assert_allclose(by_bird.loc[rows["bird"]].to_numpy(dtype=float),
                               scored["prediction"].to_numpy(dtype=float), rtol=1e-6)
    made = json.loads((tmp_path / "raw" / "_prediction.json").read_text())
    assert made["prepared_by"]["quarantined"] == record["stages"]["ingest.penguins"]["quarantined"]
    assert made["rows"] + made["prepared_by"]["quarantined"] + 2 == 344, "two rows have no body mass to learn"
