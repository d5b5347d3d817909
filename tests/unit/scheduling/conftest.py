"""A schedule kept in a local store, a fake clock, and an execute that records what it was asked to run."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.state import ScheduleState
from orchestrator.scheduling.tick import ExecutionResult, tick


def instant(text: str) -> datetime:
    """``01:00:10`` on the tests' day (2027-06-01, UTC), or a full ISO time."""
    if "T" not in text:
        text = f"2027-06-01T{text}"
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Recorder:
    """An execute that records each (schedule, slot) it runs; fails while ``failures`` says so."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []
        self.failures: list[BaseException] = []
        self.during = None  # called inside the run, before it ends
        self._lock = threading.Lock()

    def __call__(self, schedule, slot):
        with self._lock:
            self.calls.append((schedule.name, f"{slot:%H:%M}"))
            failure = self.failures.pop(0) if self.failures else None
        if self.during is not None:
            self.during(schedule, slot)
        if failure is not None:
            raise failure
        return ExecutionResult(run_id=f"run-{slot:%H%M}-{len(self.calls)}")

    @property
    def slots(self) -> list[str]:
        return [slot for _, slot in self.calls]


@pytest.fixture
def at():
    """Read a time of the tests' day (``01:00:10``) or a full ISO time, as an aware UTC instant."""
    return instant


@pytest.fixture
def store(tmp_path):
    return LocalStore(tmp_path / "store")


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def keep(store):
    """Keep a schedule (hourly, a registered job) created at ``created``; fields override the spec's."""

    def make(created: str = "00:00:00", **fields) -> ScheduleState:
        spec = ScheduleSpec.model_validate({"name": "hourly", "job": "cluster-sweep", "cron": "0 * * * *", **fields})
        state = ScheduleState(store, spec.name)
        state.save(spec, "hourly.yaml", instant(created))
        return state

    return make


@pytest.fixture
def tick_at(store, recorder):
    """Tick the store at a time of the tests' day, as runner ``r1`` unless told otherwise. These ticks jump the
    clock by hours within one run, so leases hold until their deadline: heartbeats follow real time and are
    tested on their own (test_schedule_leases.py)."""

    def run(when: str, runner: str = "r1", execute=None):
        return tick(store, instant(when), runner, execute or recorder, heartbeat_s=None)

    return run
