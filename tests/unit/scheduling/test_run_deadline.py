"""A run past its schedule's run deadline is stopped by the process running it, a little before its lease lapses:
the slot is recorded failed and retried while this runner still holds it, instead of hanging the runner beside
the runner that takes the slot over. A run that does not stop is killed with its process after a grace period."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from orchestrator.scheduling.run_deadline import RunDeadlineExceeded, enforced_deadline, stop_after


def test_a_body_running_past_its_limit_is_stopped_with_the_error_it_was_given():
    started = time.monotonic()
    with pytest.raises(RunDeadlineExceeded, match=r"^hourly 2027-06-01T01:00:00Z ran past its run deadline of 4h$"):
        with enforced_deadline(0.2, "hourly 2027-06-01T01:00:00Z ran past its run deadline of 4h"):
            time.sleep(10)
    assert time.monotonic() - started < 3
    assert RunDeadlineExceeded.retryable, "a run stopped at its deadline is retried like any failed run"


def test_the_timer_and_the_previous_alarm_handler_are_back_as_they_were_after_the_body():
    def previous(signum, frame):  # pragma: no cover - never called
        raise AssertionError("not to be called")

    before = signal.signal(signal.SIGALRM, previous)
    try:
        with enforced_deadline(5, "a run"):
            assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
        assert signal.getsignal(signal.SIGALRM) is previous
    finally:
        signal.signal(signal.SIGALRM, before)


def test_a_body_that_swallows_the_stop_is_killed_after_the_grace_period():
    killed = threading.Event()
    stops = 0
    with enforced_deadline(0.1, "a stubborn run", grace_s=0.3, kill=killed.set):
        deadline = time.monotonic() + 10
        while not killed.is_set() and time.monotonic() < deadline:
            try:
                time.sleep(0.05)
            except RunDeadlineExceeded:
                stops += 1
    assert stops == 1 and killed.is_set()


def test_a_body_that_ends_in_time_is_neither_stopped_nor_killed():
    killed = threading.Event()
    with enforced_deadline(0.3, "a quick run", grace_s=0.1, kill=killed.set):
        time.sleep(0.05)
    time.sleep(0.5)
    assert not killed.is_set()


def test_off_the_main_thread_the_body_runs_unbounded_as_signals_only_reach_the_main_thread():
    errors = []

    def run():
        try:
            with enforced_deadline(0.05, "a run in a thread"):
                time.sleep(0.3)
        except BaseException as exc:  # noqa: BLE001 - any escape fails the test
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert errors == []


def test_a_run_is_stopped_two_percent_before_its_deadline_and_at_most_a_minute_before():
    assert stop_after(4 * 3600) == 4 * 3600 - 60
    assert stop_after(600) == pytest.approx(588)
    assert stop_after(10) == pytest.approx(9.8)


def test_a_tick_whose_run_hangs_past_the_run_deadline_records_the_attempt_failed_and_retries_it(keep, tick_at, at):
    state = keep(run_deadline="1s", retries={"max": 1, "backoff": "1m"})

    def hangs(schedule, slot):
        time.sleep(30)

    started = time.monotonic()
    (outcome,) = tick_at("01:00:10", execute=hangs).outcomes
    assert time.monotonic() - started < 10
    assert outcome.action == "retrying"
    (attempt,) = state.record(at("01:00:00")).attempts
    assert attempt["outcome"] == "failed"
    assert "hourly 2027-06-01T01:00:00Z ran past its run deadline of 1s and was stopped" in attempt["error"]
