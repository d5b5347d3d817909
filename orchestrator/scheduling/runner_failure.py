"""What happens when a runner dies under its slots: ``dataops schedule tick-failed``, started by systemd's
``OnFailure=`` when the tick unit was killed (a signal, the OOM killer, its ``TimeoutStartSec=``) or failed.

The slots the runner was running hold run leases that would block them until their run deadline. Each attempt the
runner left without an outcome is recorded lost now, as a tick does when a lease expires, so the next tick (of any
runner) takes the slot over at once, as a new attempt resumed from the stage cache; and the schedule's failure hook
is told, since the dead runner could not tell it. The tick fails for good a slot whose runner was lost
``LOST_LIMIT`` times: something kills its run every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.scheduling.hooks import HookDelivery, fire_failure_hook
from orchestrator.scheduling.state import (
    DUE,
    FINAL,
    Lease,
    Schedule,
    ScheduleState,
    SlotRecord,
    iso,
    schedule_names,
)
from orchestrator.scheduling.tick import RUN

RUNNER_FAILED = "runner_failed"


@dataclass(frozen=True)
class UnitResult:
    """How the tick unit ended, as systemd (251 and later) tells the units its ``OnFailure=`` starts.

    Attributes:
        service_result: ``MONITOR_SERVICE_RESULT``: ``timeout``, ``signal``, ``oom-kill``, ``exit-code``, ``core-dump``...
        exit_code: ``MONITOR_EXIT_CODE``: ``exited``, ``killed`` or ``dumped``.
        exit_status: ``MONITOR_EXIT_STATUS``: an exit status, or a signal's name (``KILL``, ``TERM``).
        unit: ``MONITOR_UNIT``: the unit that failed.
        invocation_id: ``MONITOR_INVOCATION_ID``: which run of it (its journal: ``journalctl _SYSTEMD_INVOCATION_ID=``).
    """

    service_result: str | None = None
    exit_code: str | None = None
    exit_status: str | None = None
    unit: str | None = None
    invocation_id: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> UnitResult | None:
        """The result systemd put in the environment, None when it put none (an older systemd, a person)."""
        found = cls(*(environ.get(f"MONITOR_{name}") or None
                      for name in ("SERVICE_RESULT", "EXIT_CODE", "EXIT_STATUS", "UNIT", "INVOCATION_ID")))
        return found if any(found.to_dict().values()) else None

    def describe(self) -> str:
        """Such as ``dataops-tick.service: timeout (killed by TERM)``."""
        how = self.service_result or "failed"
        if self.exit_code == "exited" and self.exit_status is not None:
            how += f" (exited {self.exit_status})"
        elif self.exit_code is not None:
            how += f" ({self.exit_code}" + (f" by {self.exit_status})" if self.exit_status else ")")
        return f"{self.unit}: {how}" if self.unit else how

    def to_dict(self) -> dict:
        return {"service_result": self.service_result, "exit_code": self.exit_code, "exit_status": self.exit_status,
                "unit": self.unit, "invocation_id": self.invocation_id}


@dataclass(frozen=True)
class LostAttempt:
    """One attempt found running under the failed runner, and what became of its slot."""

    schedule: str
    slot: str
    attempt: int
    status: str  # due: the next tick takes it over (or fails it, once lost too many times)
    reason: str
    hook: HookDelivery | None = None

    def to_dict(self) -> dict:
        return {"schedule": self.schedule, "slot": self.slot, "attempt": self.attempt, "status": self.status,
                "reason": self.reason, "hook": self.hook.to_dict() if self.hook else None}


@dataclass
class RunnerFailureReport:
    """Everything tick-failed did for one runner."""

    runner: str
    now: datetime
    unit_result: UnitResult | None
    lost: list[LostAttempt] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"runner": self.runner, "now": iso(self.now),
                "unit_result": self.unit_result.to_dict() if self.unit_result else None,
                "lost": [attempt.to_dict() for attempt in self.lost], "errors": self.errors}


def fail_runner_attempts(store: ArtifactStore, runner_id: str, now: datetime, unit_result: UnitResult | None = None,
                         *, why: str | None = None, fire_hooks: bool = True) -> RunnerFailureReport:
    """Record lost every attempt that ``runner_id`` left running without an outcome, in every schedule of ``store``.

    Args:
        store: Where the schedules are kept.
        runner_id: The runner whose tick failed (the ``--runner`` of the tick unit).
        now: When the loss is recorded.
        unit_result: How the tick unit ended, when systemd said.
        why: What happened to the runner, for the attempts' error (default: from ``unit_result``).
        fire_hooks: Tell each schedule's failure hook (event ``runner_failed``); a runner stopped on purpose
            does not.

    Returns:
        The attempts recorded lost, and the schedules that could not be looked at (with why).
    """
    report = RunnerFailureReport(runner_id, now, unit_result)
    why = why or (f"its tick unit failed: {unit_result.describe()}" if unit_result else "its tick unit failed")
    for name in schedule_names(store):
        state = ScheduleState(store, name)
        try:
            schedule = state.load()
            for slot in state.open_slots():
                lost = _fail_slot(state, schedule, slot, runner_id, now, unit_result, why, fire_hooks)
                if lost is not None:
                    report.lost.append(lost)
        except Exception as exc:  # one schedule's trouble does not keep the others' slots blocked
            report.errors[name] = str(exc) or type(exc).__name__
    return report


def _fail_slot(state: ScheduleState, schedule: Schedule, slot: datetime, runner: str, now: datetime,
               unit_result: UnitResult | None, why: str, fire_hooks: bool) -> LostAttempt | None:
    leases = state.leases(slot)
    current: Lease | None = leases[-1] if leases else None
    record = state.record(slot)
    if current is None or current.decision != RUN or current.runner != runner or record is None \
            or record.status in FINAL:
        return None
    entry = record.attempt(current.attempt)
    if entry is not None and entry.get("outcome") is not None:
        return None
    if entry is None:  # the runner died between taking the lease and writing the attempt
        entry = {"attempt": current.attempt, "runner": runner, "started_at": current.taken_at}
        record.attempts.append(entry)
    entry.update(outcome="lost", finished_at=iso(now), error=f"runner {runner} lost: {why}")
    # An attempt lost and no retry time: the next tick takes the slot over as a resumed attempt, or fails it for
    # good once it was lost LOST_LIMIT times, as it does when a lease lapses.
    record.status, record.retry_at = DUE, None
    record.reason = f"attempt {current.attempt} lost ({why}); the next tick takes the slot over"
    state.save_record(record)
    hook = _tell_hook(state, schedule, record, current.attempt, runner, unit_result) if fire_hooks else None
    return LostAttempt(schedule.name, record.slot, current.attempt, record.status, record.reason, hook)


def _tell_hook(state: ScheduleState, schedule: Schedule, record: SlotRecord, attempt: int, runner: str,
               unit_result: UnitResult | None) -> HookDelivery | None:
    spec = schedule.spec
    if spec.on_failure is None:
        return None
    control = state.control()
    summary = {
        "event": RUNNER_FAILED,
        "schedule": spec.name,
        "slot": record.slot,
        "status": record.status,
        "trigger": record.trigger,
        "reason": record.reason,
        "attempt": attempt,
        "attempts": len(record.attempts),
        "lost": record.lost,
        "run_ids": record.run_ids,
        "runner": runner,
        "store": state.store.uri,
        "unit_result": unit_result.to_dict() if unit_result else None,
        "consecutive_failures": control.consecutive_failures,
        "paused": control.paused,
        "paused_reason": control.paused_reason if control.paused else "",
    }
    delivery = fire_failure_hook(spec.on_failure, summary)
    record.hook = delivery.to_dict()
    state.save_record(record)
    return delivery
