"""The watch's decision, rule by rule: which windows count, how many must drift, and what holds a retrain back
(one in flight, the cooldown, the cap), each decision with its code, its reason and the checks it counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.loop.decide import (
    AWAITING_APPROVAL,
    CAP_REACHED,
    COOLDOWN,
    DRIFT_NOT_SUSTAINED,
    INSUFFICIENT_DATA,
    NO_CHECKS,
    NO_DRIFT_CODE,
    NONE,
    RETRAIN,
    RETRAIN_RUNNING,
    CheckResult,
    Retrain,
    Served,
    decide,
)
from orchestrator.monitoring.policy import DriftPolicy

NOW = datetime(2027, 3, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SERVED = Served("flights", 2, NOW - 30 * DAY)


def window(days_ago: float, verdict: str = "drift", rows: int = 5000, version: int = 2,
           checked_late: timedelta = timedelta(0), name: str | None = None) -> CheckResult:
    end = NOW - days_ago * DAY
    return CheckResult(name or f"check-{days_ago}-{verdict}", end, verdict, rows, version, end + checked_late)


def drifting(days: int = 3) -> list[CheckResult]:
    return [window(d) for d in range(days)]


def policy(**sections) -> DriftPolicy:
    return DriftPolicy.model_validate(sections)


def test_three_drifted_windows_of_three_start_the_first_retrain_and_name_their_checks():
    decision = decide(DriftPolicy(), NOW, SERVED, drifting(), [])
    assert (decision.action, decision.code, decision.retrain) == (RETRAIN, "retrain", 1)
    assert decision.check_ids == decision.drifted_ids == ("check-0-drift", "check-1-drift", "check-2-drift")
    assert "3 of the last 3 windows of 1d drifted" in decision.reason
    assert decision.figures == {"min_rows": 1000, "windows": 3, "drifted": 3, "every_s": 86400.0,
                                "cooldown_s": 604800.0, "max_retrains": 2, "max_period_s": 2592000.0}


def test_the_next_retrain_is_numbered_after_the_last_one_in_the_history():
    history = [Retrain(4, NOW - 60 * DAY, NOW - 59 * DAY, "rejected")]
    assert decide(DriftPolicy(), NOW, SERVED, drifting(), history).retrain == 5


def test_two_drifted_windows_of_three_are_not_sustained_drift():
    checks = [window(0), window(1, "no_drift"), window(2)]
    decision = decide(DriftPolicy(), NOW, SERVED, checks, [])
    assert (decision.action, decision.code) == (NONE, DRIFT_NOT_SUSTAINED)
    assert decision.drifted_ids == ("check-0-drift", "check-2-drift")
    assert decision.check_ids == ("check-0-drift", "check-1-no_drift", "check-2-drift")
    assert "2 of the last 3 windows of 1d drifted; a retrain needs 3" in decision.reason


def test_k_of_m_windows_trigger_when_k_of_the_last_m_drifted():
    two_of_four = policy(watch={"windows": 4, "drifted": 2})
    checks = [window(0, "no_drift"), window(1), window(2, "no_drift"), window(3)]
    assert decide(two_of_four, NOW, SERVED, checks, []).action == RETRAIN
    assert decide(two_of_four, NOW, SERVED, checks[:3], []).code == DRIFT_NOT_SUSTAINED


def test_a_window_older_than_the_last_m_intervals_does_not_count():
    checks = [window(0), window(1), window(3)]  # the window of two days ago was never checked
    decision = decide(DriftPolicy(), NOW, SERVED, checks, [])
    assert decision.code == DRIFT_NOT_SUSTAINED and "check-3-drift" not in decision.check_ids
    assert "(1 not checked)" in decision.reason


def test_checking_one_window_twice_counts_it_once_and_the_newer_check_decides():
    again = window(1, "no_drift", checked_late=timedelta(hours=2), name="check-1-again")
    decision = decide(DriftPolicy(), NOW, SERVED, [*drifting(), again], [])
    assert decision.code == DRIFT_NOT_SUSTAINED
    assert decision.check_ids == ("check-0-drift", "check-1-again", "check-2-drift")
    # Many checks of the newest window never make three drifted windows of one.
    repeated = [window(0, name=f"check-0-{n}", checked_late=timedelta(minutes=n)) for n in range(5)]
    assert decide(DriftPolicy(), NOW, SERVED, repeated, []).code == DRIFT_NOT_SUSTAINED


def test_windows_of_an_older_model_version_never_count_after_a_promotion():
    old = [window(d, version=1, name=f"v1-{d}") for d in range(3)]
    decision = decide(DriftPolicy(), NOW, SERVED, old, [])
    assert (decision.code, decision.check_ids) == (NO_CHECKS, ())
    assert "no check of flights:2 in the last 3 windows of 1d" in decision.reason


def test_checks_made_before_the_version_was_served_again_do_not_count():
    # flights:2 served before, rolled back, served again since yesterday: its older checks judged another time.
    served_again = Served("flights", 2, NOW - 1.5 * DAY)
    decision = decide(DriftPolicy(), NOW, served_again, drifting(), [])
    assert decision.code == DRIFT_NOT_SUSTAINED and decision.check_ids == ("check-0-drift", "check-1-drift")


def test_a_check_from_after_now_is_not_known_yet():
    future = [window(-0.5, name="tomorrow"), *drifting(2)]
    assert decide(DriftPolicy(), NOW, SERVED, future, []).code == DRIFT_NOT_SUSTAINED


def test_insufficient_windows_are_never_drift_even_when_a_check_called_them_drifted():
    small = [window(0, rows=999), window(1), window(2)]  # checked under another policy, below min_rows now
    decision = decide(DriftPolicy(), NOW, SERVED, small, [])
    assert decision.code == DRIFT_NOT_SUSTAINED and decision.drifted_ids == ("check-1-drift", "check-2-drift")
    quiet = [window(0, "insufficient_data", rows=120), window(1, "no_drift"), window(2, "no_drift")]
    decision = decide(DriftPolicy(), NOW, SERVED, quiet, [])
    assert (decision.action, decision.code) == (NONE, INSUFFICIENT_DATA)
    assert "the newest window has 120 rows, fewer than the 1,000 a verdict needs" in decision.reason


def test_clean_windows_give_no_drift_and_no_windows_no_checks():
    clean = [window(d, "no_drift") for d in range(3)]
    assert decide(DriftPolicy(), NOW, SERVED, clean, []).code == NO_DRIFT_CODE
    assert decide(DriftPolicy(), NOW, SERVED, [], []).code == NO_CHECKS


def test_a_retrain_in_flight_holds_the_next_one_back():
    running = Retrain(3, NOW - 2 * DAY, None, "running")
    decision = decide(DriftPolicy(), NOW, SERVED, drifting(), [running])
    assert (decision.action, decision.code, decision.retrain) == (NONE, RETRAIN_RUNNING, 3)
    assert decision.drifted_ids == decision.check_ids and len(decision.drifted_ids) == 3
    waiting = Retrain(3, NOW - 2 * DAY, None, "awaiting_approval")
    assert decide(DriftPolicy(), NOW, SERVED, drifting(), [waiting]).code == AWAITING_APPROVAL


def test_a_final_outcome_without_an_end_is_still_taken_as_in_flight():
    odd = Retrain(1, NOW - 2 * DAY, None, "failed")
    assert decide(DriftPolicy(), NOW, SERVED, drifting(), [odd]).code == RETRAIN_RUNNING


@pytest.mark.parametrize("outcome", ["promoted", "rejected", "failed"])
def test_every_finished_retrain_starts_a_cooldown_whatever_its_outcome(outcome):
    finished = NOW - 2 * DAY
    decision = decide(DriftPolicy(), NOW, SERVED, drifting(), [Retrain(1, finished - DAY, finished, outcome)])
    assert (decision.action, decision.code, decision.until) == (NONE, COOLDOWN, finished + 7 * DAY)
    assert "the cooldown of 7d lasts until 2027-04-02 12:00:00Z" in decision.reason
    after = decide(DriftPolicy(), finished + 7 * DAY, SERVED, [window(d - 5) for d in range(3)],
                   [Retrain(1, finished - DAY, finished, outcome)])
    assert after.action == RETRAIN


def test_the_cap_counts_retrains_started_in_the_period_and_says_when_it_frees():
    starts = [NOW - 29 * DAY, NOW - 20 * DAY]
    history = [Retrain(n, s, s + DAY, "rejected") for n, s in enumerate(starts, 1)]
    decision = decide(DriftPolicy(), NOW, SERVED, drifting(), history)
    assert (decision.code, decision.until) == (CAP_REACHED, starts[0] + 30 * DAY)
    assert "2 retrains started in the last 30d (at most 2 per 30d)" in decision.reason
    one_a_week = policy(retrain={"max": "1 per 7d", "cooldown": "1h"})
    decision = decide(one_a_week, NOW, SERVED, drifting(), [Retrain(1, NOW - 3 * DAY, NOW - 2 * DAY, "failed")])
    assert (decision.code, decision.until) == (CAP_REACHED, NOW + 4 * DAY)


def test_when_cooldown_and_cap_both_hold_the_later_end_is_given():
    history = [Retrain(1, NOW - 22 * DAY, NOW - 21 * DAY, "rejected"), Retrain(2, NOW - 2 * DAY, NOW - DAY, "failed")]
    decision = decide(DriftPolicy(), NOW, SERVED, drifting(), history)
    assert (decision.code, decision.until) == (CAP_REACHED, NOW + 8 * DAY)
    assert "cooldown of 7d lasts until" in decision.reason and "at most 2 per 30d" in decision.reason
    cooling = policy(retrain={"cooldown": "10d"})
    decision = decide(cooling, NOW, SERVED, drifting(), history)
    assert (decision.code, decision.until) == (COOLDOWN, NOW + 9 * DAY)


def test_without_sustained_drift_nothing_about_retrains_is_reported():
    running = Retrain(1, NOW - DAY, None, "running")
    assert decide(DriftPolicy(), NOW, SERVED, [window(0)], [running]).code == DRIFT_NOT_SUSTAINED


def test_intervals_follow_the_watch_interval():
    hourly = policy(watch={"every": "1h"})
    checks = [CheckResult(f"h{h}", NOW - timedelta(hours=h), "drift", 5000, 2) for h in range(3)]
    assert decide(hourly, NOW, SERVED, checks, []).action == RETRAIN
    # Daily windows checked hourly are one interval under the default daily watch.
    assert decide(DriftPolicy(), NOW, SERVED, checks, []).code == DRIFT_NOT_SUSTAINED


days_of_checks = st.lists(st.tuples(st.sampled_from(["drift", "no_drift", "insufficient_data", None]),
                                    st.sampled_from([200, 999, 1000, 50_000])), min_size=1, max_size=12)


@settings(max_examples=300, deadline=None)
@given(windows=st.integers(1, 6), data=st.data(), days=days_of_checks)
def test_a_retrain_starts_exactly_when_k_of_the_last_m_checked_full_windows_drifted(windows, data, days):
    drifted = data.draw(st.integers(1, windows), label="drifted")
    k_of_m = policy(watch={"windows": windows, "drifted": drifted})
    # One entry a day, the newest last; None: nobody checked that day.
    checks = [window(len(days) - 1 - n, verdict, rows, name=f"d{n}")
              for n, (verdict, rows) in enumerate(days) if verdict is not None]
    decision = decide(k_of_m, NOW, SERVED, checks, [])
    last = days[-windows:]
    full_drifts = sum(1 for verdict, rows in last if verdict == "drift" and rows >= 1000)
    assert (decision.action == RETRAIN) == (full_drifts >= drifted)
    assert len(decision.drifted_ids) == full_drifts
    assert len(decision.check_ids) == sum(1 for verdict, _ in last if verdict is not None)
