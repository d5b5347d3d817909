"""Dates and times are read as each column's rule says (a format, a timezone) and end up as instants in UTC; a value
that does not parse goes to quarantine with a reason naming the column, the value and the expected format."""

from __future__ import annotations

import pandas as pd
import pytest

from orchestrator.errors import SpecError
from orchestrator.pipeline.spec import ColumnRule, load_pipeline
from orchestrator.pipeline.validate import REASON, check_partition
from tests.conftest import write


def utc(*stamps: str) -> list[pd.Timestamp]:
    return [pd.Timestamp(stamp, tz="UTC") for stamp in stamps]


def checked(values: list, **rule) -> pd.DataFrame:
    frame = pd.DataFrame({"when": pd.Series(values, dtype="string")})
    return check_partition(frame, {"when": ColumnRule(type="datetime", **rule)})


def test_a_us_date_with_a_two_digit_year_parses_with_its_format_in_its_zone():
    result = checked(["11/16/07", "07/04/13"], format="%m/%d/%y", timezone="America/New_York")
    assert result["when"].tolist() == utc("2007-11-16T05:00", "2013-07-04T04:00")  # EST, then EDT
    assert result[REASON].isna().all()


def test_a_value_not_written_in_the_format_goes_to_quarantine_naming_the_column_the_value_and_the_format():
    result = checked(["16/11/2007 10:30", "2007-11-16 10:30", "31/02/2007 10:30"], format="%d/%m/%Y %H:%M")
    assert result["when"].iloc[0] == pd.Timestamp("2007-11-16T10:30", tz="UTC")
    assert result[REASON].tolist() == [
        pd.NA,
        "when: expected a datetime as '%d/%m/%Y %H:%M', got '2007-11-16 10:30'",
        "when: expected a datetime as '%d/%m/%Y %H:%M', got '31/02/2007 10:30'",
    ]


def test_an_iso_value_that_does_not_parse_names_iso_8601_as_the_expected_format():
    assert checked(["yesterday"])[REASON].tolist() == ["when: expected a datetime as ISO 8601, got 'yesterday'"]


def test_naive_values_are_wall_clocks_of_the_zone_whose_offset_follows_daylight_saving():
    result = checked(["2024-01-15 12:00", "2024-07-15T12:00:00", "2024-01-05"], timezone="Europe/Berlin")
    assert result["when"].tolist() == utc("2024-01-15T11:00", "2024-07-15T10:00", "2024-01-04T23:00")


def test_values_that_carry_an_offset_keep_their_instant_whatever_the_zone():
    result = checked(["2024-07-15T12:00:00Z", "2024-07-15T12:00-05:00", "20240715T120000+0200"],
                     timezone="Asia/Tokyo")
    assert result["when"].tolist() == utc("2024-07-15T12:00", "2024-07-15T17:00", "2024-07-15T10:00")


def test_a_strftime_format_with_an_offset_reads_each_values_own_offset():
    result = checked(["15.07.2024 12:00 +0200", "15.07.2024 12:00 -0100"], format="%d.%m.%Y %H:%M %z")
    assert result["when"].tolist() == utc("2024-07-15T10:00", "2024-07-15T13:00")


def test_unix_seconds_and_milliseconds_are_instants_in_utc():
    seconds = checked(["1700000000", "1700000000.5", "soon"], format="unix_s")
    assert seconds["when"].tolist()[:2] == utc("2023-11-14T22:13:20", "2023-11-14T22:13:20.5")
    assert seconds[REASON].tolist()[2] == "when: expected a datetime as unix seconds, got 'soon'"
    millis = checked(["1700000000250"], format="unix_ms")
    assert millis["when"].tolist() == utc("2023-11-14T22:13:20.25")


def test_a_wall_clock_the_zone_skips_or_repeats_is_quarantined_rather_than_guessed():
    # Berlin skips 02:00-03:00 on 31 March 2024 and repeats 02:00-03:00 on 27 October 2024.
    result = checked(["2024-03-31 02:30", "2024-10-27 02:30", "2024-10-27 03:30"], timezone="Europe/Berlin")
    reason = "when: no such time in Europe/Berlin (a wall clock skipped or repeated when clocks change), got '{}'"
    assert result[REASON].tolist() == [reason.format("2024-03-31 02:30"), reason.format("2024-10-27 02:30"), pd.NA]
    assert result["when"].iloc[2] == pd.Timestamp("2024-10-27T02:30", tz="UTC")


def test_datetimes_a_reader_already_typed_are_converted_not_parsed():
    naive = pd.DataFrame({"when": pd.to_datetime(["2024-01-15 12:00", "2024-07-15 12:00"])})
    result = check_partition(naive, {"when": ColumnRule(type="datetime", timezone="America/Chicago")})
    assert result["when"].tolist() == utc("2024-01-15T18:00", "2024-07-15T17:00")
    zoned = pd.DataFrame({"when": pd.to_datetime(["2024-07-15 12:00"]).tz_localize("Asia/Kolkata")})
    assert check_partition(zoned, {"when": ColumnRule(type="datetime")})["when"].tolist() == utc("2024-07-15T06:30")


def test_without_a_format_or_a_zone_iso_values_are_utc_as_before():
    result = checked(["2013-01-01T06:00:00Z", "2013-01-01 07:00"])
    assert result["when"].tolist() == utc("2013-01-01T06:00", "2013-01-01T07:00")


@pytest.mark.parametrize("rule", [{}, {"timezone": "Europe/Berlin"}, {"format": "%d/%m/%Y"}, {"format": "unix_s"},
                                  {"format": "unix_ms"}, {"format": "%Y-%m-%d %z"}])
def test_every_way_of_writing_datetimes_gives_one_column_type_even_on_an_empty_partition(rule):
    # A Dask frame's partitions must have its declared type: an empty one is checked for the type of the others.
    samples = {"format": {"%d/%m/%Y": "16/11/2007", "unix_s": "1700000000", "unix_ms": "1700000000000",
                          "%Y-%m-%d %z": "2007-11-16 +0100"}.get(rule.get("format"), "2007-11-16")}
    full, empty = checked([samples["format"]], **rule), checked([], **rule)
    assert full[REASON].isna().all()
    assert str(full["when"].dtype) == str(empty["when"].dtype) == "datetime64[us, UTC]"


PIPELINE = """
name: dated
sources:
  events:
    location: events.csv
    validation:
      columns:
        at: {type: datetime, format: "%d/%m/%Y", timezone: Europe/Berlin}
        amount: {type: float}
split:
  by: hash
  column: event_id
  fractions: {train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}
"""


def test_a_format_and_a_zone_load_from_the_pipeline_file(tmp_path):
    rule = load_pipeline(write(tmp_path / "p.yaml", PIPELINE)).spec.sources["events"].validation.columns["at"]
    assert (rule.format, rule.timezone) == ("%d/%m/%Y", "Europe/Berlin")


def test_an_unknown_timezone_is_refused_at_its_line_with_the_closest_zone(tmp_path):
    path = write(tmp_path / "p.yaml", PIPELINE.replace("Europe/Berlin", "Europe/Berln"))
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    assert str(caught.value) == (
        f"{path}:7: sources.events.validation.columns.at.timezone: unknown timezone 'Europe/Berln' (did you mean "
        f"'Europe/Berlin'?); expected an IANA name such as Europe/Berlin or America/New_York")


def test_a_format_on_a_column_that_is_not_a_datetime_is_refused_at_its_line(tmp_path):
    path = write(tmp_path / "p.yaml", PIPELINE.replace("amount: {type: float}", "amount: {type: float, format: '%d'}"))
    with pytest.raises(SpecError, match=rf"^{path}:8: sources.events.validation.columns.amount: `format` applies to "
                                        r"`type: datetime` columns only; this column is type: float$"):
        load_pipeline(path)


def test_a_format_with_a_directive_strptime_does_not_know_is_refused(tmp_path):
    path = write(tmp_path / "p.yaml", PIPELINE.replace('"%d/%m/%Y"', '"%d/%m/%Q"'))
    with pytest.raises(SpecError, match=r"p.yaml:7: sources.events.validation.columns.at.format: '%d/%m/%Q' is not a "
                                        r"strftime format that can be read back \('Q' is a bad directive"):
        load_pipeline(path)


def test_a_misspelt_named_format_gets_a_suggestion(tmp_path):
    text = PIPELINE.replace('format: "%d/%m/%Y", timezone: Europe/Berlin', "format: unix_sec")
    path = write(tmp_path / "p.yaml", text)
    with pytest.raises(SpecError, match=r"p.yaml:7: .*got 'unix_sec' \(did you mean 'unix_s'\?\)"):
        load_pipeline(path)


def test_a_timezone_on_unix_timestamps_is_refused_as_they_are_utc_instants(tmp_path):
    path = write(tmp_path / "p.yaml", PIPELINE.replace('"%d/%m/%Y"', "unix_ms"))
    with pytest.raises(SpecError, match="a unix_ms value is an instant in UTC: a timezone does not apply to it"):
        load_pipeline(path)
