"""Sources that write their times in different formats and zones join on the same instants in a run, and their
values that are no time go to quarantine with the reason."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from tests.conftest import write

pytestmark = pytest.mark.integration

PIPELINE = """
name: departures-weather
sources:
  departures:
    location: departures.csv
    validation:
      columns:
        departed: {type: datetime, format: "%m/%d/%y %H:%M", timezone: America/New_York, not_null: true}
  weather:
    location: weather.jsonl
    validation:
      columns:
        observed: {type: datetime, timezone: Europe/Berlin}
blend:
  base: departures
  joins:
    - source: weather
      time: {left: departed, right: observed, tolerance: 0s}
split:
  by: time
  column: departed
  boundaries: {train: "2007-04-01", validation: "2007-10-25", test: "2007-11-01"}
  key: [flight]
"""


def write_sources(folder):
    """Departures in New York wall-clock time (US style, two-digit years) and hourly weather in Berlin's, over the
    weeks in spring and autumn when one zone has changed its clocks and the other not yet."""
    hours = pd.date_range("2007-03-01", "2007-04-15", freq="h", tz="UTC").append(
        pd.date_range("2007-10-15", "2007-11-15", freq="h", tz="UTC"))
    with open(folder / "weather.jsonl", "w") as out:
        for hour in hours:
            observed = hour.tz_convert("Europe/Berlin").strftime("%Y-%m-%dT%H:%M:%S")
            out.write(json.dumps({"observed": observed, "temp": int(hour.timestamp() // 3600)}) + "\n")
    # Berlin repeats 02:00-03:00 on 28 October, New York 01:00-02:00 on 4 November: a wall clock there names two
    # instants, so no flight takes those hours (their weather is quarantined).
    repeated = (hours.tz_convert("Europe/Berlin").strftime("%Y-%m-%d %H") == "2007-10-28 02") | (
        hours.tz_convert("America/New_York").strftime("%Y-%m-%d %H") == "2007-11-04 01")
    taken = hours[~repeated]
    departed = pd.DatetimeIndex(np.random.default_rng(2).choice(taken, 400, replace=False))
    rows = pd.DataFrame({"flight": np.arange(len(departed)),
                         "departed": departed.tz_convert("America/New_York").strftime("%m/%d/%y %H:%M")})
    bad = pd.DataFrame({"flight": [1000, 1001, 1002], "departed": ["2007-03-20 10:00", "03/32/07 10:00",
                                                                   "03/11/07 02:30"]})
    pd.concat([rows, bad]).to_csv(folder / "departures.csv", index=False)
    return write(folder / "pipeline.yaml", PIPELINE), departed


@pytest.fixture(scope="module")
def ran(tmp_path_factory, dask_client):
    """One run of the pipeline (both tests read it): the store, the run record and the departures' instants."""
    from orchestrator.artifacts.local import LocalStore

    folder = tmp_path_factory.mktemp("zones")
    path, departed = write_sources(folder)
    store = LocalStore(folder / "store")
    return store, run_pipeline(load_pipeline(path), store, dask_client).record, departed


def test_two_sources_written_in_two_zones_join_on_the_same_instants(ran):
    store, record, departed = ran
    (join,) = record["stages"]["blend"]["joins"]
    assert (join["matched"], join["rows"]) == (400, 400)
    blended = pd.read_parquet(store.dataset_path(record["stages"]["blend"]["outputs"][0]["key"]) / "data")
    blended = blended.sort_values("flight")
    assert blended["departed"].tolist() == list(departed)
    assert blended["temp"].tolist() == [int(t.timestamp() // 3600) for t in departed]  # the weather of that hour


def test_values_that_name_no_time_are_quarantined_with_the_column_the_value_and_the_format(ran):
    store, record, _ = ran
    ingest = record["stages"]["ingest.departures"]
    quarantine = pd.read_parquet(store.dataset_path(ingest["outputs"][0]["key"]) / "quarantine")
    assert dict(zip(quarantine["flight"], quarantine["_reason"])) == {
        1000: "departed: expected a datetime as '%m/%d/%y %H:%M', got '2007-03-20 10:00'",
        1001: "departed: expected a datetime as '%m/%d/%y %H:%M', got '03/32/07 10:00'",
        1002: "departed: no such time in America/New_York (a wall clock skipped or repeated when clocks change), "
              "got '03/11/07 02:30'",
    }
    weather = record["stages"]["ingest.weather"]
    assert weather["quarantined"] == 2  # 2007-10-28T02:00:00, written for two hours
