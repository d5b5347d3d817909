"""A window step adds lags and rolling aggregates of each entity's past, ordered by time: a row's features read only
rows before it, across however many partitions the frame has; its columns are named by rule, and its mistakes are
reported at the step that makes them."""

from __future__ import annotations

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from orchestrator.errors import SpecError
from orchestrator.pipeline.graph import build_graph
from orchestrator.pipeline.spec import Step, Window, load_pipeline
from orchestrator.pipeline.transforms import apply_steps
from tests.conftest import write

NAN = float("nan")


def featured(frame: pd.DataFrame, partitions: int = 3, **window) -> pd.DataFrame:
    """The frame with the window step applied, on a Dask frame of several partitions (row order kept)."""
    step = Step(window=window)
    lazy = apply_steps(dd.from_pandas(frame, npartitions=partitions, sort=False), [step], None, "features")
    # In this process, with no cluster of its own: a cluster another test left as the default would make Dask pick
    # its peer-to-peer shuffle, which the synchronous scheduler cannot run.
    with dask.config.set({"scheduler": "sync", "dataframe.shuffle.method": "tasks"}):
        return lazy.compute()


def flights() -> pd.DataFrame:
    """Two planes' departures, not in time order, the rows of one plane spread over every partition."""
    return pd.DataFrame({
        "tailnum": ["N1", "N2", "N1", "N1", "N2", "N1", "N1"],
        "day": pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-01", "2024-01-02", "2024-01-09", "2024-01-02",
                               "2024-01-09"], utc=True),
        "delay": [30.0, 5.0, 10.0, 20.0, 7.0, NAN, 40.0],
    })


def column(result: pd.DataFrame, name: str) -> list:
    return [None if pd.isna(v) else v for v in result[name]]


def test_a_lag_is_the_value_k_rows_before_in_time_order_within_the_entity():
    result = featured(flights(), by=["tailnum"], order="day", lag={"delay": [1, 2]})
    # N1 in time order: 10 (01-01), 20 (01-02), NaN (01-02, arrived after), 30 (01-03), 40 (01-09).
    assert column(result, "delay_lag1") == [None, None, None, 10.0, 5.0, 20.0, 30.0]
    assert column(result, "delay_lag2") == [20.0, None, None, None, None, 10.0, None]
    assert list(result.index) == list(range(7))  # the rows keep their order


def test_a_rows_window_aggregates_the_n_rows_before_the_row_never_the_row_itself():
    result = featured(flights(), by="tailnum", order="day",
                      rolling=[{"column": "delay", "stats": ["mean", "sum", "count", "max"], "rows": 2}])
    assert column(result, "delay_mean_2r") == [20.0, None, None, 10.0, 5.0, 15.0, 30.0]
    assert column(result, "delay_sum_2r") == [20.0, None, None, 10.0, 5.0, 30.0, 30.0]
    assert column(result, "delay_count_2r") == [1, 0, 0, 1, 1, 2, 1]
    assert column(result, "delay_max_2r") == [20.0, None, None, 10.0, 5.0, 20.0, 30.0]


def test_a_time_window_reads_rows_strictly_earlier_than_the_row_by_default():
    result = featured(flights(), by="tailnum", order="day",
                      rolling=[{"column": "delay", "stats": ["sum", "count"], "window": "2d"}])
    # N1 on 01-03 sees 01-01 and 01-02 ([01-01, 01-03)); both rows of 01-02 see only 01-01, not each other.
    assert column(result, "delay_sum_2d") == [30.0, None, None, 10.0, None, 10.0, None]
    assert column(result, "delay_count_2d") == [2, 0, 0, 1, 0, 1, 0]


def test_closed_both_adds_every_row_at_the_rows_own_time_whatever_their_order():
    frame = flights()
    frame.loc[5, "delay"] = 25.0
    result = featured(frame, by="tailnum", order="day",
                      rolling=[{"column": "delay", "stats": ["sum", "count"], "window": "1d", "closed": "both"}])
    # Both rows of 01-02 see [01-01, 01-02]: 10, 20 and 25, the first to arrive as well as the second.
    assert column(result, "delay_sum_1d") == [75.0, 5.0, 10.0, 55.0, 7.0, 55.0, 40.0]
    assert column(result, "delay_count_1d") == [3, 1, 1, 3, 1, 3, 1]


def test_rows_without_a_key_or_a_time_are_in_no_series_and_get_missing_features():
    frame = pd.DataFrame({"who": ["a", None, "a", "a"], "at": [1.0, 2.0, NAN, 3.0], "x": [1.0, 2.0, 3.0, 4.0]})
    result = featured(frame, partitions=2, by="who", order="at", lag={"x": 1})
    assert column(result, "x_lag1") == [None, None, None, 1.0]


def test_without_by_the_whole_frame_is_one_series():
    result = featured(flights(), order="day", lag={"delay": 1})
    # In time order: 5 and 10 (01-01, in arrival order), 20, NaN (01-02), 30, 7 and 40 (01-09).
    assert column(result, "delay_lag1") == [None, None, 5.0, 10.0, 30.0, 20.0, 7.0]


def test_a_lag_keeps_its_columns_type_and_an_aggregate_is_a_float():
    frame = pd.DataFrame({"k": [1, 1], "t": [1, 2], "n": [3, 4], "flag": [True, False],
                          "name": pd.Series(["x", "y"], dtype="string")})
    result = featured(frame, partitions=2, by="k", order="t", lag={"n": 1, "flag": 1, "name": 1},
                      rolling=[{"column": "n", "stats": ["count"], "rows": 1}])
    assert {name: str(result[name].dtype) for name in ("n_lag1", "flag_lag1", "name_lag1", "n_count_1r")} == {
        "n_lag1": "float64", "flag_lag1": "boolean", "name_lag1": "string", "n_count_1r": "float64"}
    assert column(result, "name_lag1") == [None, "x"] and column(result, "flag_lag1") == [None, True]


def test_the_added_columns_are_named_by_rule():
    window = Window(by=["tailnum"], order="time_hour", lag={"dep_delay": [1, 2]}, rolling=[
        {"column": "dep_delay", "stats": ["mean", "max", "count"], "rows": 5},
        {"column": "dep_delay", "stats": ["sum"], "window": "7d", "closed": "left"}])
    assert window.output_columns() == ["dep_delay_lag1", "dep_delay_lag2", "dep_delay_mean_5r", "dep_delay_max_5r",
                                       "dep_delay_count_5r", "dep_delay_sum_7d"]


def test_an_unknown_column_is_named_with_the_step_and_the_closest_column():
    with pytest.raises(SpecError, match=r"features\[0\]: window names unknown column 'dely' \(did you mean 'delay'"):
        featured(flights(), by="tailnum", order="day", lag={"dely": 1})


def test_a_column_the_frame_already_has_is_a_clash_named_with_the_step():
    frame = flights().assign(delay_lag1=0.0)
    with pytest.raises(SpecError, match=r"features\[0\]: window adds column\(s\) \['delay_lag1'\], which the frame "
                                        r"already has"):
        featured(frame, by="tailnum", order="day", lag={"delay": 1})


def test_aggregating_a_column_that_is_not_a_number_is_refused():
    with pytest.raises(SpecError, match=r"features\[0\]: window rolling aggregates 'tailnum', which is .*not a number"):
        featured(flights(), order="day", rolling=[{"column": "tailnum", "stats": ["max"], "rows": 2}])


def test_a_time_window_needs_rows_ordered_by_a_datetime():
    frame = flights().assign(seq=np.arange(7))
    with pytest.raises(SpecError, match=r"features\[0\]: a time window \(7d\) needs rows ordered by a datetime"):
        featured(frame, order="seq", rolling=[{"column": "delay", "stats": ["sum"], "window": "7d"}])


PIPELINE = """
name: planes
sources:
  flights:
    location: flights.csv
    validation:
      columns:
        day: {type: datetime}
features:
  - window:
      by: [tailnum]
      order: day
      lag: {delay: [1, 2]}
      rolling:
        - {column: delay, stats: [mean, count], rows: 5}
        - {column: delay, stats: [sum], window: 7d, closed: left}
split:
  by: time
  column: day
  boundaries: {train: "2024-09-01", validation: "2024-10-01", test: "2024-11-01"}
"""


def test_a_window_step_loads_from_the_features_of_a_pipeline_file(tmp_path):
    (step,) = load_pipeline(write(tmp_path / "p.yaml", PIPELINE)).spec.features
    assert step.kind == "window" and step.window.output_columns()[-1] == "delay_sum_7d"


def test_window_features_are_made_before_the_split_which_reads_them(tmp_path):
    stages = {stage.name: stage for stage in build_graph(load_pipeline(write(tmp_path / "p.yaml", PIPELINE)))}
    assert stages["split"].depends == ["features"]
    assert [name for name in stages if name in ("features", "split")] == ["features", "split"]


@pytest.mark.parametrize(("old", "new", "message"), [
    ("rows: 5}", "rows: 5, window: 1d}", (r"p.yaml:14: features.0.window.rolling.0: a rolling aggregate covers "
                                          r"either `rows: N` \(the N rows before each row\) or a time `window`")),
    ("rows: 5}", "rows: 5, closed: both}", r"p.yaml:14: features.0.window.rolling.0: `closed` applies to a time "),
    ("stats: [sum]", "stats: [summ]", (r"p.yaml:15: field 'features.0.window.rolling.1.stats.0': got 'summ', "
                                       r"expected .* \(did you mean 'sum'\?\)")),
    ("[1, 2]", "[0]", r"p.yaml:12: features.0.window.lag.delay.0: Input should be greater than 0"),
    ("window: 7d,", "window: 7 days,", r"p.yaml:15: features.0.window.rolling.1.window: .*7 days"),
    ("[1, 2]", "[1, 1]", r"p.yaml:9: features.0.window: the window step names the column\(s\) \['delay_lag1'\] twice"),
], ids=["rows-and-window", "closed-with-rows", "misspelt-stat", "lag-zero", "bad-duration", "same-name-twice"])
def test_a_mistake_in_a_window_step_is_reported_at_its_line(tmp_path, old, new, message):
    path = write(tmp_path / "p.yaml", PIPELINE.replace(old, new))
    with pytest.raises(SpecError, match=message):
        load_pipeline(path)
