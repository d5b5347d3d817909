"""Joins say what they matched: time-only as-of joins, their direction and tolerance, match counts that are right
across Dask partitions, and a threshold that fails a join matching (almost) nothing with a message that explains it."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from orchestrator.pipeline.blend import BROADCAST_ROWS, MATCHED, blend_frames, match_failure
from orchestrator.pipeline.spec import MIN_MATCH_FRACTION, Join, load_pipeline
from tests.conftest import write


def readings() -> pd.DataFrame:
    """A sensor read at 10:00, 11:00 and 13:00."""
    return pd.DataFrame({"t": pd.to_datetime(["2024-05-01 10:00", "2024-05-01 11:00", "2024-05-01 13:00"], utc=True),
                         "reading": [1.0, 2.0, 3.0]})


def events() -> pd.DataFrame:
    return pd.DataFrame({"t": pd.to_datetime(["2024-05-01 10:20", "2024-05-01 11:50", "2024-05-01 12:10",
                                              "2024-05-01 15:00"], utc=True), "id": [1, 2, 3, 4]})


def blended(base: pd.DataFrame, joins: list[tuple[Join, pd.DataFrame]], partitions: int = 2, right_rows=None):
    """The blend computed, and the report of each join."""
    result = blend_frames(dd.from_pandas(base, npartitions=partitions),
                          [(join, dd.from_pandas(right, npartitions=1), right_rows or len(right))
                           for join, right in joins])
    frame, counts = dask.compute(result.frame, result.counts)
    return frame, result.reports(counts)


def joined(base: pd.DataFrame, right: pd.DataFrame, join: Join, partitions: int = 2, right_rows=None):
    frame, (report,) = blended(base, [(join, right)], partitions, right_rows)
    return frame, report


def test_a_join_on_time_alone_needs_no_keys():
    join = Join(source="sensor", time={"left": "t", "right": "t", "tolerance": "1h"})
    frame, report = joined(events(), readings(), join)
    # 10:20 takes 10:00; 11:50 takes 11:00; 12:10 has nothing within the hour before it; 15:00 neither.
    assert frame["reading"].tolist()[:2] == [1.0, 2.0] and frame["reading"].iloc[2:].isna().all()
    assert (report["matched"], report["rows"], report["match_rate"]) == (2, 4, 0.5)


def test_a_time_only_join_is_accepted_in_a_pipeline_file_but_a_join_with_neither_keys_nor_time_is_not(tmp_path):
    text = """
    name: sensors
    sources:
      events: {location: events.csv}
      sensor: {location: sensor.csv}
    blend:
      base: events
      joins:
        - source: sensor
          time: {left: t, right: t, tolerance: 30min, direction: nearest}
    split: {by: hash, column: id, fractions: {train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}}
    """
    loaded = load_pipeline(write(tmp_path / "p.yaml", text))
    (join,) = loaded.spec.blend.joins
    assert join.keys == [] and join.time.direction == "nearest" and join.min_match_fraction == MIN_MATCH_FRACTION
    with pytest.raises(ValidationError, match="a join needs `keys`, both `left_on` and `right_on`, or a `time`"):
        Join(source="sensor")


@pytest.mark.parametrize("direction, expected", [
    ("backward", [1.0, 2.0, np.nan, np.nan]),   # the latest reading at or before
    ("forward", [2.0, np.nan, 3.0, np.nan]),    # the first reading at or after (11:50 -> 13:00 is 70 min)
    ("nearest", [1.0, 2.0, 3.0, np.nan]),       # the closest either way (12:10: 50 min to 13:00, 70 to 11:00)
])
def test_the_direction_says_which_neighbour_a_row_takes_within_the_tolerance(direction, expected):
    join = Join(source="sensor", time={"left": "t", "right": "t", "tolerance": "1h", "direction": direction})
    frame, report = joined(events(), readings(), join)
    assert np.allclose(frame["reading"].to_numpy(dtype=float), expected, equal_nan=True)
    assert report["matched"] == sum(not np.isnan(v) for v in expected)


def test_match_counts_and_time_ranges_are_the_same_on_any_number_of_partitions_as_in_one_pandas_merge():
    rng = np.random.default_rng(3)
    base = pd.DataFrame({"t": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90 * 24, 5000),
                                                                                     unit="h"),
                         "site": rng.choice(["a", "b", "c"], 5000)})
    weather = pd.DataFrame({"t": pd.date_range("2024-01-10", "2024-02-20", freq="3h", tz="UTC")})
    weather["site"] = np.where(np.arange(len(weather)) % 2, "a", "b")  # no weather at all for site c
    weather["temp"] = np.arange(len(weather), dtype=float)
    join = Join(source="weather", keys=["site"], time={"left": "t", "right": "t", "tolerance": "6h"})
    expected = pd.merge_asof(base.sort_values("t"), weather.assign(hit=1), on="t", by="site",
                             tolerance=pd.Timedelta("6h"))["hit"].notna().sum()
    for partitions in (1, 7):
        frame, report = joined(base, weather, join, partitions)
        assert report["matched"] == expected == frame["temp"].notna().sum()
        assert report["rows"] == 5000 and report["match_rate"] == expected / 5000
        assert report["base_time"] == [base["t"].min().isoformat(), base["t"].max().isoformat()]
        assert report["source_time"] == [weather["t"].iloc[0].isoformat(), weather["t"].iloc[-1].isoformat()]


def test_an_inner_join_keeps_only_the_matched_rows_and_the_next_join_counts_only_those():
    base = pd.DataFrame({"customer": [1, 2, 3, 4, 5, 6], "shop": [1, 1, 1, 2, 2, 3], "amount": [10.0] * 6})
    customers = pd.DataFrame({"customer": [2, 4, 6, 8], "segment": ["gold", "std", "std", "gold"]})
    shops = pd.DataFrame({"shop": [1, 2], "city": ["Lyon", "Oslo"]})
    frame, (first, second) = blended(base, [(Join(source="customers", keys=["customer"], how="inner"), customers),
                                            (Join(source="shops", keys=["shop"]), shops)], 3)
    assert sorted(frame["customer"]) == [2, 4, 6]
    assert list(frame.columns) == ["customer", "shop", "amount", "segment", "city"]
    assert (first["matched"], first["rows"], first["match_rate"]) == (3, 6, 0.5)
    # Customers 2, 4 and 6 enter the shops join: 2 and 4 are in known shops, 6 is not.
    assert (second["matched"], second["rows"]) == (2, 3)


def test_a_lookup_too_big_to_broadcast_is_shuffled_and_counted_alike():
    base = pd.DataFrame({"customer": np.arange(3000) % 40, "amount": np.ones(3000)})
    customers = pd.DataFrame({"customer": np.arange(0, 40, 2), "segment": "gold"})  # every other customer known
    join = Join(source="customers", keys=["customer"])
    counted = {}
    for right_rows in (len(customers), BROADCAST_ROWS + 1):
        frame, counted[right_rows] = joined(base, customers, join, 4, right_rows)
        assert frame["segment"].notna().sum() == 1500 and not [c for c in frame.columns if c.startswith(MATCHED)]
    assert [(r["matched"], r["rows"]) for r in counted.values()] == [(1500, 3000), (1500, 3000)]


def test_a_time_join_matching_nothing_fails_naming_the_join_both_time_ranges_and_the_rate():
    # The readings were written in local time and read as UTC: two hours later than the events, beyond the tolerance.
    late = readings().assign(t=lambda f: f["t"] + pd.Timedelta("6h"))
    join = Join(source="sensor", time={"left": "t", "right": "t", "tolerance": "1h"})
    _, report = joined(events().iloc[:3], late, join)
    assert report["match_rate"] == 0.0
    assert match_failure(report, join) == (
        "blend.joins[0] ('sensor', backward on t / t within 1h) matched 0 of 3 base rows (0.0%), less than "
        "min_match_fraction 1.0%; base t spans 2024-05-01T10:20:00+00:00 .. 2024-05-01T12:10:00+00:00, source "
        "'sensor' t spans 2024-05-01T16:00:00+00:00 .. 2024-05-01T19:00:00+00:00; set `min_match_fraction` on the "
        "join to accept it")


def test_a_key_join_below_its_threshold_fails_naming_its_keys():
    base = pd.DataFrame({"tailnum": [f"N{i}" for i in range(200)]})
    planes = pd.DataFrame({"tailnum": ["N7", "X2"], "seats": [100, 200]})  # one plane of 200 is known
    join = Join(source="planes", keys=["tailnum"], min_match_fraction=0.05)
    _, report = joined(base, planes, join)
    assert match_failure(report, join) == (
        "blend.joins[0] ('planes', keys tailnum) matched 1 of 200 base rows (0.5%), less than min_match_fraction "
        "5.0%; set `min_match_fraction` on the join to accept it")


def test_a_threshold_of_zero_accepts_a_join_that_matches_nothing_and_an_empty_base_never_fails():
    join = Join(source="sensor", time={"left": "t", "right": "t", "tolerance": "0s"}, min_match_fraction=0)
    _, report = joined(events(), readings(), join)
    assert report["matched"] == 0 and match_failure(report, join) is None
    strict = Join(source="sensor", time={"left": "t", "right": "t", "tolerance": "1h"})
    _, empty = joined(events().iloc[:0], readings(), strict, 1)
    assert empty["match_rate"] is None and match_failure(empty, strict) is None
