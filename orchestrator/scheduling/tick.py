"""The tick: what any runner (a systemd timer, a supervised loop, a person typing ``dataops schedule tick``) calls.
It starts what is due, records what it skipped or missed, retries, takes over the slots of lost runners, fires the
failure hook and pauses a schedule that keeps failing. It keeps no state of its own: everything is in the store, so
ticks are idempotent (a second tick at the same time starts nothing) and runners are replaceable.

Each slot's run is identified by (schedule, slot time); ``execute(schedule, slot)`` runs it, and a pipeline gets
the slot as its ``as_of``, so a retried or resumed slot is the same run, resumed from the stage cache.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import DataopsError, SpecError
from orchestrator.scheduling.catchup import plan_slots
from orchestrator.scheduling.cron import slots_between
from orchestrator.scheduling.hooks import fire_failure_hook
from orchestrator.scheduling.run_deadline import enforced_deadline, stop_after
from orchestrator.scheduling.spec import Concurrency
from orchestrator.scheduling.state import (
    DUE,
    FAILED,
    FINAL,
    STARTED,
    SUCCEEDED,
    Lease,
    Schedule,
    ScheduleState,
    SlotRecord,
    iso,
    parse_instant,
    schedule_names,
)

log = logging.getLogger(__name__)

# A slot whose runner was lost this many times is failed: something kills its run every time (memory, a host).
LOST_LIMIT = 3
RUN = "run"
# A run's lease lapses this long after its runner's last heartbeat; the runner beats four times as often. Long
# enough for a store that is slow for a minute, short enough that a killed runner's slot is taken over quickly.
HEARTBEAT_S = 120.0


@dataclass(frozen=True)
class ExecutionResult:
    """What ``execute`` reports of a run that succeeded."""

    run_id: str | None = None
    detail: dict = field(default_factory=dict)


Execute = Callable[[Schedule, datetime], ExecutionResult]
Clock = Callable[[], datetime]


class SlotRunFailed(DataopsError):
    """A slot's run failed; carries the id of its run record when one was written, and whether a retry may help."""

    def __init__(self, message: str, run_id: str | None = None, retryable: bool = True):
        super().__init__(message)
        self.run_id = run_id
        self.retryable = retryable


@dataclass(frozen=True)
class SlotOutcome:
    """What a tick did with one slot."""

    schedule: str
    slot: str
    action: str  # succeeded, failed, retrying, skipped, missed, running, waiting, already
    reason: str = ""
    run_id: str | None = None
    attempt: int | None = None

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "")}


@dataclass
class TickReport:
    """Everything one tick did."""

    now: datetime
    runner: str
    outcomes: list[SlotOutcome] = field(default_factory=list)
    paused: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def started(self) -> list[SlotOutcome]:
        return [o for o in self.outcomes if o.action in (SUCCEEDED, FAILED, "retrying")]

    def to_dict(self) -> dict:
        return {"now": iso(self.now), "runner": self.runner, "outcomes": [o.to_dict() for o in self.outcomes],
                "paused": self.paused, "errors": self.errors}


def elapsed_clock(start: datetime) -> Clock:
    """A clock that starts at ``start`` and runs at real speed: a tick given ``--now`` keeps its leases' times
    consistent with its own, and a tick on the real clock stamps each lease with the time it is taken."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def tick(store: ArtifactStore, now: datetime, runner_id: str, execute: Execute, *,
         clock: Clock | None = None, heartbeat_s: float | None = HEARTBEAT_S) -> TickReport:
    """Consider every schedule kept in ``store`` at ``now``: start what is due, record the rest.

    Args:
        store: Where the schedules are kept.
        now: The tick's time (aware).
        runner_id: Who ticks, written in the leases it takes and the attempts it makes.
        execute: Runs one slot of one schedule; raises (``SlotRunFailed`` or any error) when the run failed.
        clock: The time as the tick goes on (lease and attempt times); default: ``now`` plus real time elapsed.
        heartbeat_s: How long a run's lease outlives its runner's last heartbeat; None: no heartbeat, a lease
            holds until the run deadline (for clocks that jump, as in tests).

    Returns:
        What happened to each slot touched, the paused schedules, and the schedules that could not be ticked.
    """
    clock = clock or elapsed_clock(now)
    report = TickReport(now, runner_id)
    for name in schedule_names(store):
        state = ScheduleState(store, name)
        try:
            schedule = state.load()
            if state.control().paused:
                report.paused.append(name)
                continue
            report.outcomes += _new_slots(state, schedule, now, runner_id, clock)
            report.outcomes += _open_slots(state, schedule, runner_id, execute, clock, heartbeat_s)
        except DataopsError as exc:  # one broken schedule does not stop the others
            report.errors[name] = str(exc)
    return report


def run_slot(store: ArtifactStore, name: str, slot: datetime, runner_id: str, execute: Execute, trigger: str, *,
             clock: Clock | None = None, heartbeat_s: float | None = HEARTBEAT_S) -> SlotOutcome:
    """Run one slot now, whatever the cron says (``run-now``, ``backfill``): through the same lease and history as
    the tick. A slot that succeeded already is left as it is; one that failed, was skipped or missed is run again.

    Args:
        store: Where the schedule is kept.
        name: The schedule.
        slot: The slot (its run's ``as_of``).
        runner_id: Who runs it.
        execute: As for :func:`tick`.
        trigger: ``manual`` or ``backfill``, recorded with the slot.
        clock: As for :func:`tick`; default: the real time.
        heartbeat_s: As for :func:`tick`.

    Raises:
        ScheduleNotFound: No such schedule.
    """
    clock = clock or (lambda: datetime.now(UTC))
    state = ScheduleState(store, name)
    schedule = state.load()
    slot = slot.astimezone(UTC)
    state.create_record(SlotRecord(name, iso(slot), DUE, trigger=trigger, recorded_at=iso(clock())))
    state.mark_open(slot)
    outcome = _advance(state, schedule, slot, runner_id, execute, clock, heartbeat_s, [], reopen=trigger)
    return outcome or SlotOutcome(name, iso(slot), "already", "decided by another runner")


# --- new slots ---------------------------------------------------------------------------------------


def _new_slots(state: ScheduleState, schedule: Schedule, now: datetime, runner: str, clock: Clock) -> list[SlotOutcome]:
    """Plan the slots due since the last tick (never before the schedule was created, edited or resumed): mark
    the ones to run as open, record the others, then move the cursor."""
    spec = schedule.spec
    control = state.control()
    start = max(t for t in (state.cursor(), schedule.edited_at, control.resumed_at) if t is not None)
    window = slots_between(spec.cron, spec.timezone, start, now)
    outcomes = []
    for plan in plan_slots(window.slots, now, spec, window.older):
        if plan.decision == DUE:
            state.create_record(SlotRecord(spec.name, iso(plan.slot), DUE, recorded_at=iso(clock())))
            state.mark_open(plan.slot)
        elif (outcome := _record_final(state, plan.slot, plan.decision, plan.reason, runner, clock)) is not None:
            outcomes.append(outcome)
    # Only now: a runner killed before this line leaves the window to the next tick, whose leases see what was done.
    state.advance_cursor(now, runner)
    return outcomes


def _record_final(state: ScheduleState, slot: datetime, status: str, reason: str, runner: str, clock: Clock,
                  record: SlotRecord | None = None, attempt: int = 1) -> SlotOutcome | None:
    """Record ``slot`` as ``status`` (skipped, missed, failed) under a lease of its own, so that no other runner
    runs it meanwhile; None if another runner decided that attempt first."""
    if state.take_lease(slot, attempt, runner, status, clock(), None) is None:
        return None
    record = record or state.record(slot) or SlotRecord(state.name, iso(slot), status)
    record.status, record.reason, record.retry_at = status, reason, None
    record.recorded_at = record.recorded_at or iso(clock())
    state.save_record(record)
    state.mark_closed(slot)
    return SlotOutcome(state.name, iso(slot), status, reason)


# --- open slots: due, retrying, running, lost ------------------------------------------------------


def _open_slots(state: ScheduleState, schedule: Schedule, runner: str, execute: Execute, clock: Clock,
                heartbeat_s: float | None) -> list[SlotOutcome]:
    outcomes = []
    running: list[tuple[datetime, str]] = []
    for slot in state.open_slots():
        outcome = _advance(state, schedule, slot, runner, execute, clock, heartbeat_s, running)
        if outcome is not None:
            outcomes.append(outcome)
            if outcome.action == FAILED and state.control().paused:
                break  # auto-paused: nothing more of this schedule runs
    return outcomes


def _advance(state: ScheduleState, schedule: Schedule, slot: datetime, runner: str, execute: Execute, clock: Clock,
             heartbeat_s: float | None, running: list[tuple[datetime, str]],
             reopen: str | None = None) -> SlotOutcome | None:
    """Move one open slot on: run it, retry it, take it over from a lost runner, or note that it runs elsewhere.

    ``running`` collects the slots found running elsewhere (oldest first), for the concurrency policy of the later
    ones. ``reopen`` (a trigger: manual, backfill) runs again a slot that failed or was skipped or missed.
    """
    spec = schedule.spec
    record = state.record(slot) or SlotRecord(spec.name, iso(slot), DUE, recorded_at=iso(clock()))
    leases = state.leases(slot)
    current = leases[-1] if leases else None
    name, when = spec.name, iso(slot)
    if record.status in FINAL:
        if not reopen or record.status == SUCCEEDED:
            state.mark_closed(slot)
            return SlotOutcome(name, when, "already", f"{record.status} already") if reopen else None
        record.trigger, record.reason = reopen, f"run again by {reopen} (was {record.status})"
        return _take_and_run(state, schedule, record, slot, current, runner, execute, clock, heartbeat_s,
                             resumed=False)
    if current is not None and current.decision != RUN:
        # Decided by a runner that may not have written its record yet (or died doing so): write it.
        if record.status not in FINAL:
            record.status, record.reason = current.decision, record.reason or f"recorded by {current.runner}"
            state.save_record(record)
        state.mark_closed(slot)
        return None
    resumed = False
    if current is not None:
        entry = record.attempt(current.attempt)
        if entry is None or entry.get("outcome") is None:
            lapses_at = state.lapses_at(current)
            if lapses_at is None or lapses_at > clock():
                running.append((slot, current.runner))
                return SlotOutcome(name, when, "running", f"attempt {current.attempt} on {current.runner}, lease "
                                                          f"until {iso(lapses_at)}", attempt=current.attempt)
            entry = _note_lost(record, current, lapses_at)
        # Lost: its lease lapsed (noted just now), or its runner's failure was recorded (schedule tick-failed).
        if entry.get("outcome") == "lost":
            if record.lost >= LOST_LIMIT:
                reason = f"its runner was lost {record.lost} times (last: {current.runner}); not taken over again"
                outcome = _record_final(state, slot, FAILED, reason, runner, clock, record, current.attempt + 1)
                if outcome is not None:
                    _after_final_failure(state, schedule, record, runner, clock)
                return outcome
            resumed = True
        elif record.retry_at is not None and parse_instant(record.retry_at) > clock():
            return SlotOutcome(name, when, "waiting", f"retry at {record.retry_at}", attempt=current.attempt + 1)
    elif spec.concurrency is Concurrency.forbid and running and not reopen:
        busy_slot, busy_runner = running[-1]
        return _record_final(state, slot, "skipped", f"concurrency 'forbid': slot {iso(busy_slot)} is still "
                                                      f"running on {busy_runner}", runner, clock, record)
    return _take_and_run(state, schedule, record, slot, current, runner, execute, clock, heartbeat_s, resumed)


def _note_lost(record: SlotRecord, lease: Lease, lapsed_at: datetime) -> dict:
    entry = record.attempt(lease.attempt)
    if entry is None:  # the runner died between taking the lease and writing the attempt
        entry = {"attempt": lease.attempt, "runner": lease.runner, "started_at": lease.taken_at}
        record.attempts.append(entry)
    if iso(lapsed_at) == lease.expires_at:
        why = f"its lease expired at {lease.expires_at} (the run deadline)"
    else:
        why = f"its heartbeat stopped; the lease lapsed at {iso(lapsed_at)}"
    entry.update(outcome="lost", error=f"runner {lease.runner} lost: {why}")
    return entry


def _take_and_run(state: ScheduleState, schedule: Schedule, record: SlotRecord, slot: datetime, current: Lease | None,
                  runner: str, execute: Execute, clock: Clock, heartbeat_s: float | None,
                  resumed: bool) -> SlotOutcome | None:
    attempt = current.attempt + 1 if current is not None else 1
    lease = state.take_lease(slot, attempt, runner, RUN, clock(), schedule.spec.run_deadline_s)
    if lease is None:
        return SlotOutcome(schedule.name, iso(slot), "running", f"attempt {attempt} taken by another runner",
                           attempt=attempt)
    with _Heartbeat(state, lease, clock, heartbeat_s):
        return _run_attempt(state, schedule, record, slot, lease, _bounded(execute), clock, resumed)


def _bounded(execute: Execute) -> Execute:
    """``execute`` stopped at its schedule's run deadline (the timer covers the run only, not the records the tick
    writes after it)."""
    def run(schedule: Schedule, slot: datetime) -> ExecutionResult:
        spec = schedule.spec
        with enforced_deadline(stop_after(spec.run_deadline_s), f"{schedule.name} {iso(slot)} ran past its run "
                               f"deadline of {spec.run_deadline} and was stopped"):
            return execute(schedule, slot)

    return run


class _Heartbeat:
    """Beats for a run lease while the run goes on, from a thread of its own: a killed process stops beating, and
    its slot is taken over once the last beat has lapsed. Beats stop at the lease's deadline: a run that hangs
    past it loses its slot whatever it does."""

    def __init__(self, state: ScheduleState, lease: Lease, clock: Clock, ttl_s: float | None):
        self.state, self.lease, self.clock, self.ttl_s = state, lease, clock, ttl_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat_until_stopped, name=f"heartbeat {lease.schedule}",
                                       daemon=True)

    def _beat(self) -> None:
        self.state.beat(self.lease, self.clock() + timedelta(seconds=self.ttl_s))

    def _beat_until_stopped(self) -> None:
        while not self.stopped.wait(self.ttl_s / 4):
            try:
                self._beat()
            except Exception as exc:  # a store that fails for a moment: the next beat may pass; the lease decides
                log.warning("heartbeat of %s %s failed: %s", self.lease.schedule, self.lease.slot, exc)

    def __enter__(self) -> _Heartbeat:
        if self.ttl_s is not None:
            self._beat()
            self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()


def _run_attempt(state: ScheduleState, schedule: Schedule, record: SlotRecord, slot: datetime, lease: Lease,
                 execute: Execute, clock: Clock, resumed: bool) -> SlotOutcome:
    spec = schedule.spec
    entry = {"attempt": lease.attempt, "runner": lease.runner, "started_at": iso(clock())}
    if resumed:
        entry["resumed"] = True
    record.attempts.append(entry)
    record.status, record.retry_at = STARTED, None
    state.save_record(record)
    state.mark_open(slot)
    try:
        result = execute(schedule, slot)
    except Exception as exc:  # any failure of the run is the slot's outcome, recorded; the tick goes on
        error = str(exc) or type(exc).__name__
        entry.update(outcome=FAILED, finished_at=iso(clock()), error=error)
        if getattr(exc, "run_id", None):
            entry["run_id"] = exc.run_id
        retryable = getattr(exc, "retryable", not isinstance(exc, SpecError))
        failures = record.failures
        if retryable and failures <= spec.retries.max:
            record.status = DUE
            record.retry_at = iso(clock() + timedelta(seconds=spec.retries.delay_s(failures)))
            record.reason = f"attempt {lease.attempt} failed: {error}; retry {failures} of {spec.retries.max} " \
                            f"at {record.retry_at}"
            state.save_record(record)
            return SlotOutcome(spec.name, iso(slot), "retrying", record.reason, entry.get("run_id"), lease.attempt)
        why = "not worth retrying" if not retryable else ("no retries left" if spec.retries.max else "no retries")
        record.status, record.reason = FAILED, f"{error} ({why})"
        state.save_record(record)
        state.mark_closed(slot)
        _after_final_failure(state, schedule, record, lease.runner, clock)
        return SlotOutcome(spec.name, iso(slot), FAILED, record.reason, entry.get("run_id"), lease.attempt)
    entry.update(outcome=SUCCEEDED, finished_at=iso(clock()), run_id=result.run_id)
    if result.detail:
        entry["detail"] = result.detail
    record.status, record.reason = SUCCEEDED, ""
    state.save_record(record)
    state.mark_closed(slot)
    control = state.control()
    if control.consecutive_failures:
        control.consecutive_failures = 0
        state.save_control(control)
    return SlotOutcome(spec.name, iso(slot), SUCCEEDED, run_id=result.run_id, attempt=lease.attempt)


def _after_final_failure(state: ScheduleState, schedule: Schedule, record: SlotRecord, runner: str,
                         clock: Clock) -> None:
    """Count the failure, pause the schedule after too many in a row, and tell the failure hook."""
    spec = schedule.spec
    control = state.control()
    control.consecutive_failures += 1
    limit = spec.pause_after_failures
    if limit is not None and control.consecutive_failures >= limit and not control.paused:
        control.paused, control.paused_at = True, clock()
        control.paused_reason = f"paused after {control.consecutive_failures} slots failed in a row " \
                                f"(last: {record.slot}); resume it once fixed"
    state.save_control(control)
    if spec.on_failure is None:
        return
    summary = {
        "event": "slot_failed",
        "schedule": spec.name,
        "slot": record.slot,
        "status": record.status,
        "trigger": record.trigger,
        "reason": record.reason,
        "attempts": len(record.attempts),
        "run_ids": record.run_ids,
        "runner": runner,
        "store": state.store.uri,
        "consecutive_failures": control.consecutive_failures,
        "paused": control.paused,
        "paused_reason": control.paused_reason if control.paused else "",
    }
    record.hook = fire_failure_hook(spec.on_failure, summary).to_dict()
    state.save_record(record)
