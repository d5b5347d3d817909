"""Cron slots across every daylight-saving edge, written out as the UTC instants a schedule fires at.

The behaviour is Debian cron's (cronsim's): on the fall-back day a job at a fixed hour runs once, at the first of
the repeated times, while an hourly job runs in both repeated hours; on the spring-forward day a fixed-hour job
whose time does not exist runs at the first instant after the gap, and an hourly job loses the missing hour.
"""

from datetime import datetime

import pytest

from orchestrator.scheduling.cron import InvalidCron, check_cron, next_slots, slots_between, zone


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text)


def fired(expression: str, tz: str, after: str, count: int) -> list[str]:
    slots = next_slots(expression, tz, utc(after), count)
    # The window walk (backwards, used by the tick) must find exactly the slots the forward walk finds.
    window = slots_between(expression, tz, utc(after), slots[-1])
    assert window.slots == slots and not window.older
    return [f"{slot:%Y-%m-%dT%H:%MZ}" for slot in slots]


# Europe/Berlin, 2027: CET -> CEST on 28 March at 02:00 (01:00Z); CEST -> CET on 31 October at 03:00 (01:00Z).

def test_berlin_daily_0230_moves_to_0300_on_the_spring_forward_day():
    assert fired("30 2 * * *", "Europe/Berlin", "2027-03-26T12:00Z", 4) == [
        "2027-03-27T01:30Z",  # 02:30 CET
        "2027-03-28T01:00Z",  # 02:30 does not exist: 03:00 CEST
        "2027-03-29T00:30Z",  # 02:30 CEST
        "2027-03-30T00:30Z",
    ]


def test_berlin_daily_0230_runs_once_on_the_fall_back_day():
    assert fired("30 2 * * *", "Europe/Berlin", "2027-10-30T12:00Z", 3) == [
        "2027-10-31T00:30Z",  # the first 02:30 (CEST); the second one (01:30Z, CET) does not fire
        "2027-11-01T01:30Z",  # 02:30 CET
        "2027-11-02T01:30Z",
    ]


def test_berlin_hourly_loses_the_missing_hour_when_spring_forward():
    assert fired("0 * * * *", "Europe/Berlin", "2027-03-27T23:30Z", 4) == [
        "2027-03-28T00:00Z",  # 01:00 CET
        "2027-03-28T01:00Z",  # 03:00 CEST: 02:00 did not exist
        "2027-03-28T02:00Z",  # 04:00 CEST
        "2027-03-28T03:00Z",
    ]


def test_berlin_hourly_runs_in_both_repeated_hours_when_falling_back():
    assert fired("0 * * * *", "Europe/Berlin", "2027-10-30T22:30Z", 5) == [
        "2027-10-30T23:00Z",  # 01:00 CEST
        "2027-10-31T00:00Z",  # 02:00 CEST
        "2027-10-31T01:00Z",  # 02:00 CET, the repeated hour
        "2027-10-31T02:00Z",  # 03:00 CET
        "2027-10-31T03:00Z",
    ]


def test_berlin_every_30_minutes_keeps_every_repeated_half_hour():
    assert fired("*/30 * * * *", "Europe/Berlin", "2027-10-30T23:50Z", 5) == [
        "2027-10-31T00:00Z", "2027-10-31T00:30Z",  # 02:00, 02:30 CEST
        "2027-10-31T01:00Z", "2027-10-31T01:30Z",  # 02:00, 02:30 CET
        "2027-10-31T02:00Z",
    ]


# America/New_York, 2027: EST -> EDT on 14 March at 02:00 (07:00Z); EDT -> EST on 7 November at 02:00 (06:00Z).

def test_new_york_daily_0230_moves_to_0300_on_the_spring_forward_day():
    assert fired("30 2 * * *", "America/New_York", "2027-03-13T12:00Z", 3) == [
        "2027-03-14T07:00Z",  # 03:00 EDT
        "2027-03-15T06:30Z",  # 02:30 EDT
        "2027-03-16T06:30Z",
    ]


def test_new_york_daily_0130_runs_once_on_the_fall_back_day():
    assert fired("30 1 * * *", "America/New_York", "2027-11-06T12:00Z", 3) == [
        "2027-11-07T05:30Z",  # 01:30 EDT; 01:30 EST (06:30Z) does not fire
        "2027-11-08T06:30Z",  # 01:30 EST
        "2027-11-09T06:30Z",
    ]


def test_new_york_quarter_past_every_hour_skips_the_missing_0215():
    assert fired("15 * * * *", "America/New_York", "2027-03-14T05:00Z", 3) == [
        "2027-03-14T05:15Z",  # 00:15 EST
        "2027-03-14T06:15Z",  # 01:15 EST
        "2027-03-14T07:15Z",  # 03:15 EDT: 02:15 did not exist and is not moved
    ]


def test_new_york_hourly_runs_in_both_0100s_when_falling_back():
    assert fired("0 * * * *", "America/New_York", "2027-11-07T03:30Z", 4) == [
        "2027-11-07T04:00Z",  # 00:00 EDT
        "2027-11-07T05:00Z",  # 01:00 EDT
        "2027-11-07T06:00Z",  # 01:00 EST
        "2027-11-07T07:00Z",  # 02:00 EST
    ]


# Australia/Lord_Howe shifts by half an hour: +11 -> +10:30 on 4 April 2027 at 02:00 (back to 01:30),
# +10:30 -> +11 on 3 October 2027 at 02:00 (forward to 02:30).

def test_lord_howe_daily_0145_runs_once_in_the_repeated_half_hour():
    assert fired("45 1 * * *", "Australia/Lord_Howe", "2027-04-03T00:00Z", 3) == [
        "2027-04-03T14:45Z",  # 4 April, 01:45 +11; the repeated 01:45 +10:30 (15:15Z) does not fire
        "2027-04-04T15:15Z",  # 5 April, 01:45 +10:30
        "2027-04-05T15:15Z",
    ]


def test_lord_howe_daily_0215_moves_to_0230_when_the_half_hour_is_skipped():
    assert fired("15 2 * * *", "Australia/Lord_Howe", "2027-10-02T00:00Z", 3) == [
        "2027-10-02T15:30Z",  # 3 October: 02:15 does not exist, 02:30 +11
        "2027-10-03T15:15Z",  # 4 October, 02:15 +11
        "2027-10-04T15:15Z",
    ]


def test_utc_slots_are_plain():
    assert fired("0 2 * * *", "UTC", "2027-03-27T00:00Z", 2) == ["2027-03-27T02:00Z", "2027-03-28T02:00Z"]


def test_a_window_excludes_its_start_and_includes_its_end():
    window = slots_between("0 * * * *", "UTC", utc("2027-01-01T01:00Z"), utc("2027-01-01T03:00Z"))
    assert [f"{s:%H:%M}" for s in window.slots] == ["02:00", "03:00"]


def test_a_long_outage_keeps_only_the_newest_slots_of_its_window():
    window = slots_between("* * * * *", "UTC", utc("2026-01-01T00:00Z"), utc("2027-01-01T00:00Z"), limit=3)
    assert [f"{s:%Y-%m-%dT%H:%M}" for s in window.slots] == ["2026-12-31T23:58", "2026-12-31T23:59",
                                                             "2027-01-01T00:00"]
    assert window.older


@pytest.mark.parametrize("expression, message", [
    ("61 2 * * *", "Bad minute"),
    ("* * *", "expected five fields"),
    ("0 0 * * * *", "expected five fields"),
    ("0 0 30 2 *", "it never fires|Bad day-of-month"),
])
def test_a_bad_expression_is_refused_with_what_is_wrong(expression, message):
    with pytest.raises(InvalidCron, match=message):
        check_cron(expression)


def test_an_unknown_time_zone_suggests_the_closest():
    with pytest.raises(InvalidCron, match="did you mean 'Europe/Berlin'"):
        zone("Europe/Berln")
