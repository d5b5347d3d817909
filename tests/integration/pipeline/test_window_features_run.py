"""Window features on a real Dask cluster: the same as a plain single-process computation of each row's past however
the rows are spread over partitions, and, in a run, no train row's feature depends on a later partition's row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import Step, Window, load_pipeline
from orchestrator.pipeline.transforms import apply_steps
from tests.conftest import write

pytestmark = pytest.mark.integration

WINDOW = {
    "by": ["device"],
    "order": "at",
    "lag": {"reading": [1, 3], "status": [1]},
    "rolling": [
        {"column": "reading", "stats": ["mean", "sum", "min", "max", "count"], "rows": 4},
        {"column": "reading", "stats": ["mean", "count"], "window": "7d"},
        {"column": "level", "stats": ["sum", "max", "count"], "window": "2d", "closed": "both"},
    ],
}


def past_of_each_row(frame: pd.DataFrame, window: Window) -> pd.DataFrame:
    """The window's features computed row by row, in one process, straight from their definition: a row's past is
    the rows of its entity earlier in time, or at its time and earlier in the frame (its rows' places, sorted by
    time and place, before its own); a time window holds the entity's rows whose time is in it."""
    frame = frame.reset_index(drop=True)
    features = {name: [np.nan] * len(frame) for name in window.output_columns()}
    known = frame[frame[[*window.by, window.order]].notna().all(axis=1)]
    stats = {"mean": np.mean, "sum": np.sum, "min": np.min, "max": np.max}
    for _, entity in known.groupby(window.by or (lambda _: 0)):
        entity = entity.assign(place=entity.index).sort_values([window.order, "place"])
        times = entity[window.order].to_numpy()
        for j, (i, now) in enumerate(zip(entity.index, times)):
            for column, lags in window.lag.items():
                for k in lags:
                    features[f"{column}_lag{k}"][i] = entity[column].iloc[j - k] if j >= k else np.nan
            for rolling in window.rolling:
                values = entity[rolling.column].to_numpy(dtype=float)
                if rolling.rows:
                    values = values[max(j - rolling.rows, 0):j]
                else:
                    start = now - pd.Timedelta(seconds=rolling.window_seconds)
                    values = values[(times >= start) & ((times <= now) if rolling.closed == "both" else (times < now))]
                values = values[~np.isnan(values)]
                for stat, name in zip(rolling.stats, rolling.output_columns()):
                    features[name][i] = (len(values) if stat == "count" else
                                         stats[stat](values) if len(values) else np.nan)
    return pd.DataFrame(features, dtype=object)


def readings(rows: int, seed: int) -> pd.DataFrame:
    """Devices' readings in no particular order: days with several readings at the very same time, missing
    readings, devices and times, and every device's rows spread over the whole frame."""
    rng = np.random.default_rng(seed)
    at = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90, rows), unit="D") \
        + pd.to_timedelta(rng.integers(0, 3, rows) * 8, unit="h")
    frame = pd.DataFrame({
        "device": pd.Series(rng.choice([f"d{i}" for i in range(12)], rows), dtype="string"),
        "at": at,
        "reading": rng.normal(20, 5, rows).round(2),
        "level": rng.integers(0, 10, rows),
        "status": pd.Series(rng.choice(["ok", "warn"], rows), dtype="string"),
    })
    frame.loc[rng.random(rows) < 0.1, "reading"] = np.nan
    frame.loc[rng.random(rows) < 0.03, "device"] = pd.NA
    frame.loc[rng.random(rows) < 0.03, "at"] = pd.NaT
    return frame


def test_features_over_many_partitions_equal_a_single_process_computation_of_each_rows_past(dask_client):
    import dask.dataframe as dd

    frame = readings(900, seed=11)
    window = Window.model_validate(WINDOW)
    expected = past_of_each_row(frame, window)
    for partitions in (1, 6):
        lazy = apply_steps(dd.from_pandas(frame, npartitions=partitions, sort=False), [Step(window=window)], None,
                           "features")
        result = dask_client.compute(lazy).result()
        assert result.index.equals(frame.index), "the rows keep their order"
        pd.testing.assert_frame_equal(result[list(frame.columns)], frame)
        for name in window.output_columns():
            got, want = result[name], expected[name]
            if name != "status_lag1":  # numbers, summed in another order: equal to rounding
                got, want = got.astype("float64"), want.astype("float64")
            else:
                got = got.astype(object).where(got.notna(), np.nan)
            pd.testing.assert_series_equal(got, want, check_names=False, obj=f"{name} on {partitions} partitions")


PIPELINE = """
name: devices
sources:
  readings:
    location: readings.csv
    validation:
      columns:
        at: {type: datetime, not_null: true}
        reading: {type: float}
        level: {type: float}
features:
  - window:
      by: [device]
      order: at
      lag: {reading: [1, 2]}
      rolling:
        - {column: reading, stats: [mean, max, count], rows: 5}
        - {column: level, stats: [sum], window: 7d}
        - {column: level, stats: [mean], window: 2d, closed: both}
split:
  by: time
  column: at
  boundaries: {train: "2024-03-01", validation: "2024-03-15", test: "2024-03-22"}
  key: [reading_id]
"""


def write_readings(folder, frame: pd.DataFrame):
    frame.assign(at=frame["at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(folder / "readings.csv", index=False)
    return write(folder / "pipeline.yaml", PIPELINE)


def partition(store, record: dict, name: str) -> pd.DataFrame:
    rows = pd.read_parquet(store.dataset_path(record["stages"]["split"]["outputs"][0]["key"]) / name)
    return rows.sort_values("reading_id").reset_index(drop=True)


def test_no_train_rows_feature_depends_on_a_row_of_a_later_partition(tmp_path, store, dask_client):
    frame = readings(1500, seed=5).dropna(subset=["at"]).reset_index(drop=True)
    frame.insert(0, "reading_id", np.arange(len(frame)))
    path = write_readings(tmp_path, frame)
    first = run_pipeline(load_pipeline(path), store, dask_client).record
    train = partition(store, first, "train")
    assert len(train) and train["reading_lag1"].notna().any() and train["level_sum_7d"].notna().any()

    # Every row of validation, test and serve changes: other values, in another order, some gone, new ones on the
    # boundary at the top of the file. The train rows keep their order (rows at the same time are taken in it).
    later = (frame["at"] >= pd.Timestamp("2024-03-01", tz="UTC")).to_numpy()
    order = frame.index.to_numpy().copy()
    order[later] = np.random.default_rng(3).permutation(order[later])
    changed = frame.loc[order]
    moved = changed["at"] >= pd.Timestamp("2024-03-01", tz="UTC")
    changed.loc[moved, "reading"] = changed.loc[moved, "reading"] * -3 + 7
    changed.loc[moved, "level"] = 99
    added = changed[moved].head(20).assign(at=pd.Timestamp("2024-03-01", tz="UTC"),
                                          reading_id=lambda rows: rows["reading_id"] + 100_000)
    changed = pd.concat([added, changed.drop(index=changed.index[moved][::7])])
    second = run_pipeline(load_pipeline(write_readings(tmp_path, changed)), store, dask_client).record
    assert second["stages"]["features"]["status"] == "ran"
    assert not partition(store, second, "test").equals(partition(store, first, "test")), "later rows did change"
    pd.testing.assert_frame_equal(partition(store, second, "train"), train)
