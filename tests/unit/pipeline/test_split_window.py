"""A time split can follow the time a run is for (its as_of, a schedule's slot): walking back from as_of, the rows
whose labels are not known yet are served, the freshest labelled period is the held-out test, the one before it
validation, then train; older rows are left out. Fixed boundaries keep working as before."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.errors import SpecError
from orchestrator.pipeline.isolation import PARTITION
from orchestrator.pipeline.spec import Split, load_pipeline
from orchestrator.pipeline.split import label_partition

WINDOW = {"by": "time", "column": "ts",
          "window": {"train": "60d", "validation": "7d", "test": "7d", "label_delay": "1d"}}


def test_a_window_resolves_to_fixed_dates_walking_back_from_as_of():
    split = Split.model_validate(WINDOW).at("2024-06-30T00:00:00Z")
    assert split.window is None
    # serve from 06-29 (a day of label delay), test from 06-22, validation from 06-15, train 60 days before that.
    assert split.start == "2024-04-16T00:00:00Z"
    assert split.boundaries == {"train": "2024-06-15T00:00:00Z", "validation": "2024-06-22T00:00:00Z",
                                "test": "2024-06-29T00:00:00Z"}


def test_a_later_slot_moves_every_boundary_by_the_same_time():
    first = Split.model_validate(WINDOW).at("2024-06-30T00:00:00Z")
    later = Split.model_validate(WINDOW).at("2024-07-07T00:00:00+00:00")
    for name in ("train", "validation", "test"):
        assert pd.Timestamp(later.boundaries[name]) - pd.Timestamp(first.boundaries[name]) == pd.Timedelta(days=7)


def test_rows_older_than_the_window_are_in_no_partition_and_unlabelled_ones_are_served():
    split = Split.model_validate(WINDOW).at("2024-06-30T00:00:00Z")
    frame = pd.DataFrame({"ts": pd.to_datetime(["2024-01-01T00:00", "2024-05-01T00:00", "2024-06-18T00:00",
                                                "2024-06-25T00:00", "2024-06-29T12:00", None], utc=True),
                          "x": range(6)})
    labelled = label_partition(frame, split)
    assert dict(zip(labelled["x"], labelled[PARTITION])) == {1: "train", 2: "validation", 3: "test", 4: "serve",
                                                             5: "serve"}


def test_without_a_label_delay_the_test_period_ends_at_as_of():
    split = Split.model_validate({"by": "time", "column": "ts",
                                  "window": {"train": "30d", "validation": "7d", "test": "7d"}}).at("2024-06-30")
    assert split.boundaries["test"] == "2024-06-30T00:00:00Z"


def test_fixed_boundaries_split_as_before_with_no_row_left_out():
    split = Split.model_validate({"by": "time", "column": "ts",
                                  "boundaries": {"train": "2024-02-01", "validation": "2024-03-01",
                                                 "test": "2024-04-01"}})
    assert split.at("2030-01-01T00:00:00Z") is split
    frame = pd.DataFrame({"ts": pd.to_datetime(["2023-01-01", "2024-02-15", "2024-03-15", "2024-05-01"]),
                          "x": range(4)})
    assert list(label_partition(frame, split)[PARTITION]) == ["train", "validation", "test", "serve"]


@pytest.mark.parametrize("split, message", [
    ("{by: time, column: ts, boundaries: {train: '2024-01-01', validation: '2024-02-01', test: '2024-03-01'},"
     " window: {train: 30d, validation: 7d, test: 7d}}", "give either `window`"),
    ("{by: time, column: ts, window: {train: 30d, validation: a week, test: 7d}}",
     "invalid duration 'a week'"),
    ("{by: time, column: ts, window: {train: 30d, validation: 7d, tset: 7d}}", "did you mean 'test'"),
])
def test_a_bad_window_names_the_file_line_and_field(tmp_path, split, message):
    path = tmp_path / "pipeline.yaml"
    path.write_text(f"name: p\nsources:\n  rows: {{location: rows.csv}}\nsplit: {split}\n")
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    assert f"{path}:4" in str(caught.value) and message in str(caught.value)
