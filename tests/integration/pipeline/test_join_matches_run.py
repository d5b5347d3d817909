"""A run says what each join matched, in the stage table and the run record, and a join that matches (next to)
nothing fails the run with the join, both sides' time ranges and its match rate, instead of passing in silence."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.lineage import load_record
from orchestrator.cli.main import app
from orchestrator.errors import ValidationFailed
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from tests.conftest import write
from tests.integration.pipeline.conftest import make_shop

pytestmark = pytest.mark.integration

PIPELINE = """
name: shop-weather
sources:
  events:
    location: events.csv
    validation:
      columns:
        ts: {{type: datetime, not_null: true}}
        amount: {{type: float, min: 0}}
  customers:
    location: customers.jsonl
  weather:
    location: weather.csv
    validation:
      columns:
        at: {{type: datetime, not_null: true}}
blend:
  base: events
  joins:
    - source: customers
      keys: [customer]
    - source: weather                # the city's weather, by time alone
      time: {{left: ts, right: at, tolerance: 1d}}
split:
  by: time
  column: ts
  boundaries: {{train: "2024-09-01", validation: "2024-10-01", test: "2024-11-01"}}
  key: [event_id]
"""


def shop_with_weather(folder, weather_year=2024):
    make_shop(folder)
    days = pd.date_range(f"{weather_year}-01-01", f"{weather_year}-12-31", freq="D", tz="UTC")
    pd.DataFrame({"at": days.strftime("%Y-%m-%dT%H:%M:%SZ"), "temp": range(len(days))}).to_csv(
        folder / "weather.csv", index=False)
    return write(folder / "pipeline.yaml", PIPELINE.format())


def test_the_stage_table_and_the_run_record_give_each_joins_match_rate(tmp_path):
    path = shop_with_weather(tmp_path)
    store = tmp_path / "store"
    result = CliRunner().invoke(app, ["run", str(path), "--store", str(store)])
    assert result.exit_code == 0, result.output
    assert "1,997 -> 1,997 rows; matched customers 100.0%, weather 100.0%" in result.stderr
    shown = CliRunner().invoke(app, ["runs", "show", "latest", "--store", str(store), "--json"])
    (customers, weather) = json.loads(shown.stdout)["stages"]["blend"]["joins"]
    assert (customers["join"], customers["matched"], customers["rows"]) == ("blend.joins[0]", 1997, 1997)
    assert weather["match_rate"] == 1.0 and weather["source_time"] == ["2024-01-01T00:00:00+00:00",
                                                                        "2024-12-31T00:00:00+00:00"]


def test_an_as_of_join_that_matches_nothing_fails_the_run_naming_the_join_the_time_ranges_and_the_rate(
        tmp_path, store, dask_client):
    path = shop_with_weather(tmp_path, weather_year=2023)  # last year's weather: nothing within a day of an event
    with pytest.raises(ValidationFailed) as failed:
        run_pipeline(load_pipeline(path), store, dask_client)
    message = str(failed.value)
    assert message.startswith("blend.joins[1] ('weather', backward on ts / at within 1d) matched 0 of 1,997 base rows "
                              "(0.0%), less than min_match_fraction 1.0%; base ts spans 2024-01-01T")
    assert "source 'weather' at spans 2023-01-01T00:00:00+00:00 .. 2023-12-31T00:00:00+00:00" in message
    record = load_record(store, "latest")
    assert record["status"] == "failed" and "blend.joins[1] ('weather'" in record["error"]
    assert not list(store.list("cache/blend")), "a failed blend must not be cached"


def test_a_join_allowed_to_match_nothing_runs_and_says_so(tmp_path, store, dask_client):
    path = shop_with_weather(tmp_path, weather_year=2023)
    path.write_text(path.read_text().replace("tolerance: 1d}", "tolerance: 1d}\n      min_match_fraction: 0"))
    record = run_pipeline(load_pipeline(path), store, dask_client).record
    weather = record["stages"]["blend"]["joins"][1]
    assert (weather["matched"], weather["match_rate"], weather["min_match_fraction"]) == (0, 0.0, 0.0)
