"""Hand a schedule's timing to an orchestrator a team already runs (Airflow, Prefect): write the DAG file or the
deployment that fires its slots, and run the one slot each of their runs names (``dataops schedule run-slot``)
through the same lease and history as the tick, so the store stays the truth."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

from orchestrator.artifacts.open import open_store
from orchestrator.atomic import write_atomically
from orchestrator.config import setting
from orchestrator.errors import DataopsError
from orchestrator.pipeline.runner import StageEvent
from orchestrator.scheduling.cron import slots_between
from orchestrator.scheduling.export import (
    DEFAULT_PASS_ENV,
    EXTERNAL,
    ORCHESTRATORS,
    ClockChange,
    ExportTarget,
    SchedulePaused,
    SlotFailed,
    SlotHeldElsewhere,
    airflow_dag,
    check_slot,
    clock_changes,
    prefect_flow,
    prefect_yaml,
    run_slot_argv,
)
from orchestrator.scheduling.spec import CatchUp
from orchestrator.scheduling.state import FAILED, SUCCEEDED, Schedule, ScheduleState, iso, parse_instant
from orchestrator.scheduling.tick import Clock, Execute, SlotOutcome, run_slot
from orchestrator.usecases.schedules import runner_identity, slot_executor

# Rounds of run_slot beyond the schedule's retries before run-slot gives up on a slot that keeps changing hands.
SPARE_ROUNDS = 5


def _utcnow() -> datetime:
    return datetime.now(UTC)


# --- run-slot ------------------------------------------------------------------------------------------


def run_external_slot(name: str, slot: datetime, store: str | None = None, runner: str | None = None,
                      execute: Execute | None = None, on_event: StageEvent | None = None, clock: Clock | None = None,
                      sleep: Callable[[float], None] = time.sleep) -> SlotOutcome:
    """Run the slot an orchestrator's run names, through the same lease and history as the tick (trigger
    ``external``), until it succeeds or fails for good: the schedule's retries are waited for and run here, so
    the orchestrator sees the slot's final outcome.

    Args:
        name: The schedule.
        slot: The run's time: its logical date (Airflow) or scheduled start time (Prefect).
        store: Where the schedule is kept (else the ``store`` setting).
        runner: This runner's identity; default: host, process and a random part.
        execute: How the slot runs; default: the tick's (a pipeline with the slot as ``as_of``, or a job).
        on_event: Stage events of the pipeline run.
        clock: The time (tests); default: the real clock.
        sleep: How to wait for a retry (tests); default: :func:`time.sleep`.

    Returns:
        The outcome: ``succeeded``, or ``already`` for a slot that had succeeded (nothing ran).

    Raises:
        ScheduleNotFound: No such schedule.
        NotASlot: ``slot`` is not a slot of the schedule's cron; the message names the nearest ones.
        SchedulePaused: The schedule is paused in the store; nothing ran.
        SlotHeldElsewhere: Another runner holds the slot's lease.
        SlotFailed: The slot failed for good; its history record says why.
    """
    location = setting("store", store)
    artifact_store = open_store(location)
    state = ScheduleState(artifact_store, name)
    schedule = state.load()
    slot = check_slot(schedule.spec, slot)
    clock = clock or _utcnow
    runner = runner or runner_identity()
    execute = execute or slot_executor(location, on_event)
    for _ in range(schedule.spec.retries.max + SPARE_ROUNDS):
        control = state.control()
        if control.paused:
            raise SchedulePaused(f"schedule {name} is paused in {artifact_store.uri} ({control.paused_reason}): slot "
                                 f"{iso(slot)} not run; `dataops schedule resume {name}` lets it run")
        outcome = run_slot(artifact_store, name, slot, runner, execute, EXTERNAL, clock=clock)
        record = state.record(slot)
        if outcome.action in (SUCCEEDED, "already") and record is not None and record.status == SUCCEEDED:
            return outcome
        if outcome.action == FAILED:
            raise SlotFailed(f"slot {iso(slot)} of schedule {name} failed: {outcome.reason}"
                             + (f" (run {outcome.run_id})" if outcome.run_id else ""))
        if outcome.action == "running":
            raise SlotHeldElsewhere(f"slot {iso(slot)} of schedule {name} is held by another runner: "
                                    f"{outcome.reason}")
        if outcome.action in ("retrying", "waiting") and record is not None and record.retry_at:
            sleep(max(0.0, (parse_instant(record.retry_at) - clock()).total_seconds()))
        # Otherwise another runner decided the slot meanwhile (skipped, missed): run_slot runs such a slot again.
    raise SlotHeldElsewhere(f"slot {iso(slot)} of schedule {name} kept changing hands between runners; see "
                            f"`dataops schedule show {name}`")


# --- export --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedSchedule:
    """What ``export`` wrote.

    Attributes:
        files: The files written.
        start: The first instant the orchestrator considers.
        command: The command each of its runs executes (before ``--slot``).
        clock_changes: Days the orchestrator will not fire a slot as dataops counts it.
    """

    files: list[Path]
    start: datetime
    command: list[str]
    clock_changes: list[ClockChange]


def _worker_store(location: str) -> str:
    """The store as a worker elsewhere names it: a local folder by its absolute path."""
    if urlparse(location).scheme:
        return location
    return str(Path(location).expanduser().resolve())


def handover_start(state: ScheduleState, schedule: Schedule, now: datetime) -> datetime:
    """Where the orchestrator takes over: where the store's ticks left off (the schedule's creation, last edit or
    resumption if later), so slots missed in between are caught up by the orchestrator as the schedule's policy
    says; with catch-up ``skip``, now; with ``all``, no earlier than its ``max_catchup`` newest slots."""
    spec = schedule.spec
    if spec.catchup is CatchUp.skip:
        return now
    start = max(t for t in (state.cursor(), schedule.edited_at, state.control().resumed_at) if t is not None)
    if spec.catchup is CatchUp.all:
        window = slots_between(spec.cron, spec.timezone, start, now, limit=spec.max_catchup)
        if window.older:
            start = window.slots[0] - timedelta(seconds=1)
    return min(start, now)


def export_schedule(name: str, to: str, output: Path | str = ".", store: str | None = None,
                    dataops_bin: str = "dataops", pass_env: Iterable[str] = (), work_pool: str = "default",
                    now: datetime | None = None) -> ExportedSchedule:
    """Write what makes Airflow or Prefect fire a schedule's slots through ``dataops schedule run-slot``.

    Airflow: ``OUTPUT/dataops_NAME.py``, a DAG file for the DAGs folder. Prefect: ``OUTPUT/dataops_NAME/flow.py``
    and ``prefect.yaml`` beside it (``prefect deploy --all`` there, or ``python flow.py`` to serve it).

    Args:
        name: The schedule.
        to: ``airflow`` or ``prefect``.
        output: The folder to write into (created if missing).
        store: Where the schedule is kept (else the ``store`` setting); the generated files name it too.
        dataops_bin: The ``dataops`` executable on the orchestrator's workers.
        pass_env: Variables handed from the workers' environment to dataops besides OS_CLOUD and
            OS_CLIENT_CONFIG_FILE (by name: their values are never written).
        work_pool: The Prefect work pool.
        now: The time of the export (tests); default: the real clock.

    Returns:
        The files written, where the orchestrator takes over, the command its runs execute, and the days around
        daylight saving it will not fire a slot as dataops counts it (in the coming 400 days).

    Raises:
        ScheduleNotFound: No such schedule.
        DataopsError: Unknown orchestrator, or an invalid variable name.
    """
    if to not in ORCHESTRATORS:
        from orchestrator.yaml_files import suggest

        raise DataopsError(f"unknown orchestrator {to!r}{suggest(to, ORCHESTRATORS)}: expected one of "
                           f"{', '.join(ORCHESTRATORS)}")
    location = setting("store", store)
    state = ScheduleState(open_store(location), name)
    schedule = state.load()
    now = now or _utcnow()
    start = handover_start(state, schedule, now)
    names = tuple(dict.fromkeys([*DEFAULT_PASS_ENV, *pass_env]))
    target = ExportTarget(_worker_store(location), dataops_bin, names, start, work_pool)
    folder = Path(output)
    stem = f"dataops_{name.replace('-', '_')}"
    if to == "airflow":
        folder.mkdir(parents=True, exist_ok=True)
        texts = {folder / f"{stem}.py": airflow_dag(schedule.spec, target)}
    else:
        folder = folder / stem
        folder.mkdir(parents=True, exist_ok=True)
        texts = {folder / "flow.py": prefect_flow(schedule.spec, target),
                 folder / "prefect.yaml": prefect_yaml(schedule.spec, target)}
    for path, text in texts.items():
        write_atomically(path, text)
    return ExportedSchedule(list(texts), start, run_slot_argv(name, target), clock_changes(schedule.spec, to, now))
