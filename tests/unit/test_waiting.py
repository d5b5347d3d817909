"""One wait helper for every wait: it polls until a wanted state, stops at once on a failure state, and stops at
its deadline with a timeout that is a different error, with a different exit code, from a failure."""

from __future__ import annotations

import pytest

from orchestrator.errors import CloudError, StackFailed, StackTimedOut, WaitFailed, WaitTimeout
from orchestrator.waiting import wait_until


class FakeClock:
    """Monotonic time that moves only when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _statuses(*statuses):
    """A poll that returns the given statuses one by one, then the last one for ever."""
    remaining = list(statuses)
    return lambda: remaining.pop(0) if len(remaining) > 1 else remaining[0]


def _wait(poll, clock, **overrides):
    arguments = dict(status=lambda s: s, ready=["CREATE_COMPLETE"], failures=["CREATE_FAILED"], timeout_s=10,
                     what="stack demo", interval_s=2, clock=clock, sleep=clock.sleep)
    return wait_until(poll, **{**arguments, **overrides})


def test_it_polls_every_interval_until_a_ready_state_and_returns_what_the_poll_returned():
    clock = FakeClock()
    result = _wait(_statuses("CREATE_IN_PROGRESS", "CREATE_IN_PROGRESS", "CREATE_COMPLETE"), clock)
    assert result == "CREATE_COMPLETE"
    assert clock.sleeps == [2, 2]


def test_a_ready_state_at_the_first_poll_returns_without_sleeping():
    clock = FakeClock()
    assert _wait(_statuses("CREATE_COMPLETE"), clock) == "CREATE_COMPLETE"
    assert clock.sleeps == []


def test_a_failure_state_stops_at_once_with_wait_failed_naming_what_the_state_and_the_reason():
    clock = FakeClock()
    with pytest.raises(WaitFailed) as failure:
        _wait(_statuses("CREATE_IN_PROGRESS", "CREATE_FAILED"), clock,
              reason=lambda s: "resource scheduler: Flavor m1.huge could not be found.")
    assert str(failure.value) == "stack demo CREATE_FAILED: resource scheduler: Flavor m1.huge could not be found."
    assert not isinstance(failure.value, WaitTimeout)
    assert failure.value.exit_code == 18
    assert clock.sleeps == [2]


def test_the_deadline_raises_wait_timeout_naming_the_state_left_in_and_the_timeout():
    clock = FakeClock()
    with pytest.raises(WaitTimeout) as timeout:
        _wait(_statuses("CREATE_IN_PROGRESS"), clock, timeout_s=5)
    assert str(timeout.value) == "stack demo still CREATE_IN_PROGRESS after 5 s (waited for CREATE_COMPLETE)"
    assert not isinstance(timeout.value, WaitFailed)
    assert timeout.value.exit_code == 17


def test_the_last_sleep_is_cut_short_so_the_final_look_comes_at_the_deadline():
    clock = FakeClock()
    with pytest.raises(WaitTimeout):
        _wait(_statuses("CREATE_IN_PROGRESS"), clock, timeout_s=5)
    assert clock.sleeps == [2, 2, 1]
    assert clock.now == 1005.0


def test_a_zero_timeout_looks_once_and_times_out_without_sleeping():
    clock = FakeClock()
    with pytest.raises(WaitTimeout):
        _wait(_statuses("DELETE_IN_PROGRESS"), clock, timeout_s=0, ready=["DELETE_COMPLETE"])
    assert clock.sleeps == []


def test_callers_choose_the_precise_errors_and_stack_errors_are_cloud_errors_too():
    clock = FakeClock()
    with pytest.raises(StackFailed):
        _wait(_statuses("CREATE_FAILED"), clock, failure_error=StackFailed, timeout_error=StackTimedOut)
    with pytest.raises(StackTimedOut):
        _wait(_statuses("CREATE_IN_PROGRESS"), clock, failure_error=StackFailed, timeout_error=StackTimedOut)
    assert issubclass(StackFailed, CloudError) and issubclass(StackTimedOut, CloudError)
    assert (StackFailed.exit_code, StackTimedOut.exit_code) == (WaitFailed.exit_code, WaitTimeout.exit_code)
    assert StackFailed.exit_code != StackTimedOut.exit_code != CloudError.exit_code
