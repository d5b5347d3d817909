"""Keep schedules in the store and run their slots: create, inspect, pause and resume them, run one now, backfill
a window, and the tick that a runner executes."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.open import open_store
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.config import setting
from orchestrator.errors import DataopsError, SpecError
from orchestrator.pipeline.runner import StageEvent
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.local_state import state_root
from orchestrator.scheduling.bundle import bundle_manifest, collect_bundle, materialize_bundle, same_files, save_bundle
from orchestrator.scheduling.cron import next_slots, slots_between, zone
from orchestrator.scheduling.spec import REGISTERED_JOBS, ScheduleSpec, load_schedule_spec
from orchestrator.scheduling.state import (
    STARTED,
    SUCCEEDED,
    Control,
    Schedule,
    ScheduleState,
    SlotRecord,
    iso,
    schedule_names,
)
from orchestrator.scheduling.tick import (
    Execute,
    ExecutionResult,
    SlotOutcome,
    SlotRunFailed,
    TickReport,
    run_slot,
    tick,
)

# How far back a failed slot's run record is looked for (newest first): a run writes its record as it starts.
RECENT_RUNS = 20


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _store(store: str | None) -> ArtifactStore:
    return open_store(setting("store", store))


def runner_identity() -> str:
    """This process as a runner: host, process and a random part (two runners on one host never share one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(2)}"


# --- keeping schedules ---------------------------------------------------------------------------------


def create_schedule(path: Path, store: str | None = None, now: datetime | None = None) -> tuple[ScheduleSpec, str]:
    """Validate a schedule file (and the pipeline it runs) and keep it in the store; an existing schedule of the
    same name is updated. Creating or editing starts the schedule from now: no earlier slot is caught up.

    Args:
        path: The schedule file.
        store: The store to keep it in (else the ``store`` setting).
        now: The time of creation (tests); default: the real clock.

    Returns:
        The spec, and ``created``, ``updated`` or ``unchanged``.

    Raises:
        SpecError: The schedule file or its pipeline file is malformed; names file, line and field.
    """
    spec = load_schedule_spec(path)
    state = ScheduleState(_store(store), spec.name)
    digest = None
    if spec.pipeline_file is not None:
        if not Path(spec.pipeline_file).is_file():
            field = "watch.pipeline" if spec.watch is not None else "pipeline"
            raise SpecError(f"{path}: field {field!r}: no pipeline file {spec.pipeline_file}")
        load_pipeline(spec.pipeline_file)
        # The files first: a runner that sees the new schedule finds its pipeline.
        digest = save_bundle(state.store, spec.name, collect_bundle(Path(spec.pipeline_file)))
    return spec, state.save(spec, str(Path(path).resolve()), now or _utcnow(), digest)


def delete_schedule(name: str, store: str | None = None) -> int:
    """Remove a schedule with its history and leases; return how many objects went.

    Raises:
        ScheduleNotFound: No such schedule.
    """
    state = ScheduleState(_store(store), name)
    state.load()
    return state.delete()


def pause_schedule(name: str, store: str | None = None, reason: str = "paused by an operator",
                   now: datetime | None = None) -> Control:
    """Pause a schedule: ticks start none of its slots (running ones finish)."""
    state = ScheduleState(_store(store), name)
    state.load()
    control = state.control()
    if not control.paused:
        control.paused, control.paused_at, control.paused_reason = True, now or _utcnow(), reason
        state.save_control(control)
    return control


def resume_schedule(name: str, store: str | None = None, now: datetime | None = None) -> Control:
    """Resume a paused schedule from now: the slots that passed while it was paused are not caught up (a backfill
    runs them), and its count of failures in a row starts again."""
    state = ScheduleState(_store(store), name)
    state.load()
    control = state.control()
    control.paused, control.paused_reason, control.paused_at = False, "", None
    control.resumed_at, control.consecutive_failures = now or _utcnow(), 0
    state.save_control(control)
    return control


# --- reading them --------------------------------------------------------------------------------------


def _upcoming(spec: ScheduleSpec, now: datetime, count: int) -> list[datetime]:
    return next_slots(spec.cron, spec.timezone, now, count)


def list_schedules(store: str | None = None, now: datetime | None = None) -> list[dict]:
    """Every schedule kept in the store: what it runs, when next, whether paused, how its last slot went."""
    artifact_store, now = _store(store), now or _utcnow()
    rows = []
    for name in schedule_names(artifact_store):
        state = ScheduleState(artifact_store, name)
        schedule, control = state.load(), state.control()
        last = state.history(limit=1)
        rows.append({
            "name": name, "runs": schedule.spec.what, "cron": schedule.spec.cron, "timezone": schedule.spec.timezone,
            "paused": control.paused, "next": iso(_upcoming(schedule.spec, now, 1)[0]),
            "last_slot": last[0].slot if last else None, "last_status": last[0].status if last else None,
        })
    return rows


def show_schedule(name: str, store: str | None = None, history: int = 10, now: datetime | None = None) -> dict:
    """One schedule: its spec (the webhook reduced to its host), control state, next slots and recent history."""
    state = ScheduleState(_store(store), name)
    schedule, control = state.load(), state.control()
    return {
        "name": name,
        "spec": schedule.spec.summary(),
        "source": schedule.source,
        "created_at": iso(schedule.created_at),
        "edited_at": iso(schedule.edited_at),
        "control": control.to_dict(),
        "considered_until": iso(state.cursor()),
        "next": [iso(slot) for slot in _upcoming(schedule.spec, now or _utcnow(), 3)],
        "history": [record.to_dict() for record in state.history(limit=history)],
    }


def upcoming_slots(name: str, count: int = 5, store: str | None = None,
                   now: datetime | None = None) -> list[tuple[datetime, datetime]]:
    """The next ``count`` slots of a schedule, each as (UTC, wall-clock time in the schedule's zone): daylight
    saving shows as it will happen."""
    schedule = ScheduleState(_store(store), name).load()
    tz = zone(schedule.spec.timezone)
    return [(slot, slot.astimezone(tz)) for slot in _upcoming(schedule.spec, now or _utcnow(), count)]


# --- running slots -------------------------------------------------------------------------------------


def _cluster_sweep(schedule: Schedule, slot: datetime) -> ExecutionResult:
    from orchestrator.usecases.clusters import sweep_clusters

    expired: list[str] = []
    leftovers = sweep_clusters(None, expired=True, on_expired=expired.append)
    return ExecutionResult(detail={"expired_clusters": expired, "orphans_deleted": len(leftovers)})


# Every job a schedule file may name (orchestrator.scheduling.spec.REGISTERED_JOBS), and what runs it.
JOBS: dict[str, Callable[[Schedule, datetime], ExecutionResult]] = {"cluster-sweep": _cluster_sweep}
assert set(JOBS) == set(REGISTERED_JOBS), "every registered job name needs its function here"


def _failed_run_id(store: ArtifactStore, pipeline: str, as_of: str) -> str | None:
    """The run record a failed slot's run left, if it got as far as writing one."""
    for run_id in reversed(list_run_ids(store)[-RECENT_RUNS:]):
        record = load_record(store, run_id)
        if record.get("parameters", {}).get("as_of") == as_of and record["pipeline"]["path"] == pipeline:
            return run_id
    return None


def scheduled_pipeline(store: ArtifactStore, schedule: Schedule) -> Path:
    """The pipeline file a slot of ``schedule`` runs: the one kept in the store with the schedule, written into
    this machine's schedules folder (``DATAOPS_SCHEDULES_DIR``, default ``~/.dataops/schedules``); the operator's own
    file where it is here and identical (its relative local sources then resolve as they did at creation)."""
    manifest = bundle_manifest(store, schedule.name)
    original = Path(schedule.spec.pipeline_file)
    if manifest is None or same_files(original, manifest):
        return original
    return materialize_bundle(store, schedule.name, manifest, state_root("DATAOPS_SCHEDULES_DIR", "schedules"))


def slot_executor(home_store: str, on_event: StageEvent | None = None) -> Execute:
    """How this machine runs a slot: a pipeline through the run use case with the slot as ``as_of`` (on the
    schedule's cluster or scheduler, into the schedule's store or the one it is kept in), or a registered job.

    Args:
        home_store: The store the schedule is kept in (the runs' store unless the schedule names another).
        on_event: Stage events of pipeline runs, as for ``dataops run``.
    """
    from orchestrator.usecases.run import run_pipeline_file

    def execute(schedule: Schedule, slot: datetime) -> ExecutionResult:
        spec = schedule.spec
        if spec.job is not None:
            return JOBS[spec.job](schedule, slot)
        runs_store = spec.store or home_store
        pipeline = scheduled_pipeline(open_store(home_store), schedule)
        if spec.watch is not None:
            from orchestrator.usecases.watch import watch_slot

            return watch_slot(spec, pipeline, slot, home_store)
        try:
            result = run_pipeline_file(pipeline, runs_store, spec.scheduler, spec.cluster,
                                       on_event=on_event, as_of=iso(slot))
        except DataopsError as exc:
            run_id = _failed_run_id(open_store(runs_store), str(pipeline), iso(slot))
            raise SlotRunFailed(str(exc), run_id, retryable=not isinstance(exc, SpecError)) from exc
        return ExecutionResult(result.run_id)

    return execute


def tick_schedules(store: str | None = None, now: datetime | None = None, runner: str | None = None,
                   execute: Execute | None = None, on_event: StageEvent | None = None) -> TickReport:
    """One tick over every schedule of the store: what a runner executes (every minute, say).

    Args:
        store: Where the schedules are kept (else the ``store`` setting).
        now: The tick's time: tests and backfills only; default: the real clock.
        runner: This runner's identity; default: host, process and a random part.
        execute: How a slot runs; default: :func:`slot_executor`.
        on_event: Stage events of the pipeline runs.
    """
    location = setting("store", store)
    execute = execute or slot_executor(location, on_event)
    return tick(open_store(location), now or _utcnow(), runner or runner_identity(), execute)


def run_now(name: str, store: str | None = None, runner: str | None = None, execute: Execute | None = None,
            on_event: StageEvent | None = None, now: datetime | None = None) -> SlotOutcome:
    """Run one slot of a schedule now (its ``as_of`` is now), here, through the same lease and history as the
    tick: it cannot collide with a runner. A paused schedule runs too (that is what run-now is for)."""
    location = setting("store", store)
    slot = (now or _utcnow()).replace(microsecond=0)
    return run_slot(open_store(location), name, slot, runner or runner_identity(),
                    execute or slot_executor(location, on_event), "manual")


def backfill(name: str, start: datetime, end: datetime, store: str | None = None, dry_run: bool = False,
             runner: str | None = None, execute: Execute | None = None,
             on_event: StageEvent | None = None) -> list[SlotOutcome]:
    """Run the schedule's slots from ``start`` to ``end`` (both included), oldest first, here: every slot that did
    not succeed (missing, failed, skipped, missed); one that succeeded or is running is left alone.

    Args:
        name: The schedule.
        start: The window's first instant.
        end: Its last instant.
        store: Where the schedule is kept.
        dry_run: Only say what would run.
        runner: This runner's identity.
        execute: How a slot runs; default: :func:`slot_executor`.
        on_event: Stage events of the pipeline runs.

    Returns:
        One outcome per slot of the window (``would-run``, ``already``, ``running`` for a dry run).

    Raises:
        DataopsError: ``end`` is before ``start``, or the window holds more slots than a backfill takes at once.
    """
    if end < start:
        raise DataopsError(f"backfill window ends ({iso(end)}) before it starts ({iso(start)})")
    location = setting("store", store)
    artifact_store = open_store(location)
    state = ScheduleState(artifact_store, name)
    spec = state.load().spec
    limit = 1000
    # The window's start is excluded from slots_between: begin a second earlier so a slot at ``start`` is in.
    window = slots_between(spec.cron, spec.timezone, start.replace(microsecond=0) - timedelta(seconds=1), end,
                           limit=limit)
    if window.older:
        raise DataopsError(f"backfill of {name} from {iso(start)} to {iso(end)} holds more than {limit} slots: "
                           "give a shorter window")
    outcomes = []
    execute = execute or slot_executor(location, on_event)
    runner = runner or runner_identity()
    for slot in window.slots:
        record: SlotRecord | None = state.record(slot)
        if record is not None and record.status in (SUCCEEDED, STARTED):
            outcomes.append(SlotOutcome(name, iso(slot), "already" if record.status == SUCCEEDED else "running",
                                        record.status))
        elif dry_run:
            outcomes.append(SlotOutcome(name, iso(slot), "would-run", record.status if record else "no record"))
        else:
            outcomes.append(run_slot(artifact_store, name, slot, runner, execute, "backfill"))
    return outcomes


def parse_time(text: str, option: str) -> datetime:
    """Read an instant given on the command line: ISO 8601, UTC when no zone is written.

    Raises:
        DataopsError: Not such a time; names the option.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DataopsError(f"invalid time {text!r} for {option}: expected ISO 8601 such as 2027-03-28T02:30:00Z "
                           "(UTC when no zone is written)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
