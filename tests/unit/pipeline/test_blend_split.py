"""Time-aligned joins pick the latest matching row within the tolerance; hash splits are deterministic."""

import pandas as pd

from orchestrator.pipeline.blend import _asof_merge
from orchestrator.pipeline.spec import Join, Split
from orchestrator.pipeline.split import label_partition


def test_each_flight_gets_the_weather_at_its_origin_in_the_hour_of_departure():
    flights = pd.DataFrame({
        "origin": ["JFK", "EWR", "JFK", "JFK"],
        "time_hour": pd.to_datetime(["2013-01-01 10:00", "2013-01-01 10:00", "2013-01-01 12:00", "2013-01-01 15:00"], utc=True),
    }, index=[10, 11, 12, 13])
    weather = pd.DataFrame({
        "origin": ["JFK", "JFK", "EWR", "JFK"],
        "time_hour": pd.to_datetime(["2013-01-01 10:00", "2013-01-01 11:00", "2013-01-01 09:00", "2013-01-01 13:00"], utc=True),
        "temp": [1.0, 2.0, 3.0, 4.0],
    })
    join = Join(source="weather", keys=["origin"], time={"left": "time_hour", "right": "time_hour", "tolerance": "1h"})
    merged = _asof_merge(flights, weather.sort_values("time_hour"), join)  # join_frames sorts it once
    assert list(merged.index) == [10, 11, 12, 13]  # the left order survives
    # JFK 10:00 exact; EWR 10:00 takes 09:00 (within 1h); JFK 12:00 takes 11:00; JFK 15:00 has none within 1h.
    assert merged["temp"].tolist()[:3] == [1.0, 3.0, 2.0]
    assert pd.isna(merged["temp"].iloc[3])


def test_a_hash_split_is_deterministic_and_close_to_its_fractions():
    frame = pd.DataFrame({"customer": [f"c{i}" for i in range(20000)]})
    split = Split(by="hash", column="customer", fractions={"train": 0.7, "validation": 0.1, "test": 0.1, "serve": 0.1})
    first = label_partition(frame, split)["_partition"]
    again = label_partition(frame.sample(frac=1, random_state=1), split)["_partition"].sort_index()
    assert first.equals(again)
    shares = first.value_counts(normalize=True)
    assert abs(shares["train"] - 0.7) < 0.02 and abs(shares["serve"] - 0.1) < 0.02


def test_a_time_split_puts_rows_before_each_boundary_in_that_partition():
    frame = pd.DataFrame({"ts": pd.to_datetime(["2024-08-31", "2024-09-01", "2024-10-15", "2024-12-01"], utc=True)})
    split = Split(by="time", column="ts", boundaries={"train": "2024-09-01", "validation": "2024-10-01", "test": "2024-11-01"})
    assert label_partition(frame, split)["_partition"].tolist() == ["train", "validation", "test", "serve"]
