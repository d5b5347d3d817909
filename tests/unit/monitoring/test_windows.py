"""Current windows: the options that choose captured rows, and captured lines read back with the monitored names."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from orchestrator.errors import DataopsError
from orchestrator.monitoring.windows import (
    CAPTURED_AT,
    CaptureFormatError,
    InvalidWindow,
    LastRows,
    TimeWindow,
    capture_day,
    capture_frame,
    choose_window,
    flush_time,
    newest,
    within,
)

NOW = dt.datetime(2026, 5, 2, 12, 0, tzinfo=dt.timezone.utc)
UTC = dt.timezone.utc


def line(ts: str, model="tiny", version=1, **outputs) -> str:
    return json.dumps({"ts": ts, "model": model, "version": version, "request_id": None,
                       "inputs": {"hour": 7.0, "carrier": "AA"},
                       "outputs": outputs or {"label": 1, "probabilities": [0.25, 0.75]}})


def test_no_option_is_the_last_24_hours_up_to_now():
    assert choose_window(None, None, None, None, NOW) == TimeWindow(NOW - dt.timedelta(hours=24), NOW)


def test_a_duration_ends_at_until_and_iso_times_without_offset_are_utc():
    window = choose_window("90m", None, "2026-05-01T10:00", None, NOW)
    assert window == TimeWindow(dt.datetime(2026, 5, 1, 8, 30, tzinfo=UTC), dt.datetime(2026, 5, 1, 10, tzinfo=UTC))
    span = choose_window(None, "2026-05-01T00:00:00+02:00", "2026-05-01T12:00:00Z", None, NOW)
    assert span.since == dt.datetime(2026, 4, 30, 22, tzinfo=UTC)


def test_the_newest_rows_are_a_count_and_take_no_time_option():
    assert choose_window(None, None, None, 500, NOW) == LastRows(500)
    with pytest.raises(InvalidWindow, match="--last-rows counts rows"):
        choose_window("24h", None, None, 500, NOW)
    with pytest.raises(InvalidWindow, match="at least 1"):
        choose_window(None, None, None, 0, NOW)


@pytest.mark.parametrize(("window", "since", "until", "message"), [
    ("24h", "2026-05-01", None, "give one"),
    (None, "2026-05-02T13:00", None, "the window is empty"),
    (None, "yesterday", None, "invalid time 'yesterday' for --since"),
    ("a day", None, None, "invalid duration 'a day' for --window"),
])
def test_contradicting_or_malformed_window_options_are_refused_with_the_option_named(window, since, until, message):
    with pytest.raises(DataopsError, match=message):
        choose_window(window, since, until, None, NOW)


def test_a_time_window_reads_its_days_and_the_next_and_skips_batches_flushed_before_it():
    window = TimeWindow(dt.datetime(2026, 4, 30, 23, tzinfo=UTC), dt.datetime(2026, 5, 1, 23, 59, tzinfo=UTC))
    assert window.days() == ["2026-04-30", "2026-05-01", "2026-05-02"]
    assert not window.may_hold("tiny/1/2026-04-30/20260430T225959000000Z-11-000003.jsonl")
    assert window.may_hold("tiny/1/2026-04-30/20260430T230001000000Z-11-000004.jsonl")
    assert flush_time("x/20260430T230001000000Z-11-000004.jsonl") == dt.datetime(2026, 4, 30, 23, 0, 1, tzinfo=UTC)
    assert capture_day("captures/tiny/1/2026-04-30/b.jsonl") == "2026-04-30"
    assert capture_day("captures/tiny/1/notes.txt") is None


def test_captured_outputs_get_the_names_predict_writes_and_other_models_lines_are_left_out():
    data = "\n".join([line("2026-05-01T10:00:00+00:00"), line("2026-05-01T10:00:01+00:00", model="other"),
                      line("2026-05-01T10:00:02+00:00", version=2)]).encode()

    frame = capture_frame(data, "tiny", 1, classes=["on_time", "late"])

    assert list(frame.columns) == ["hour", "carrier", "prediction", "proba_on_time", "proba_late", CAPTURED_AT]
    assert frame.iloc[0][["hour", "carrier", "prediction", "proba_late"]].tolist() == [7.0, "AA", 1, 0.75]
    assert frame[CAPTURED_AT].iloc[0] == pd.Timestamp("2026-05-01T10:00:00Z")


def test_a_regressors_variable_is_the_prediction_and_the_missing_token_is_missing():
    data = (line("2026-05-01T10:00:00+00:00", variable=[12.5]).replace('"AA"', '"__missing__"') + "\n").encode()

    frame = capture_frame(data, "tiny", 1, missing_values={"carrier": "__missing__"})

    assert frame["prediction"].tolist() == [12.5] and frame["carrier"].isna().all()


def test_a_line_that_is_no_capture_record_names_the_batch_and_line():
    data = (line("2026-05-01T10:00:00+00:00") + "\n{\"ts\": 1}\n").encode()
    with pytest.raises(CaptureFormatError, match=r"b\.jsonl, line 2: not a capture record"):
        capture_frame(data, "tiny", 1, source="b.jsonl")


def test_within_keeps_the_span_and_newest_keeps_the_latest_rows():
    stamps = pd.to_datetime(["2026-05-01T09:59:59Z", "2026-05-01T10:00:00Z", "2026-05-01T11:00:00Z"], utc=True)
    frame = pd.DataFrame({"x": [1, 2, 3], CAPTURED_AT: stamps})
    window = TimeWindow(dt.datetime(2026, 5, 1, 10, tzinfo=UTC), dt.datetime(2026, 5, 1, 11, tzinfo=UTC))
    assert within(frame, window)["x"].tolist() == [2]
    assert newest(frame.iloc[::-1], 2)["x"].tolist() == [2, 3]
