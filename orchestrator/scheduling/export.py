"""Moving a schedule onto an orchestrator a team already runs (Airflow, Prefect): the files that make it fire the
schedule's slots, the contract of the command they run (``dataops schedule run-slot``: which times it accepts and
what its exit codes say), and the days on which the orchestrator's cron and ours disagree.

The orchestrator only says *when*. Each of its runs calls ``run-slot`` with the run's time, which takes the slot's
lease in the store, runs it with the slot as ``as_of`` and keeps its one history record, as a tick would: history,
leases, retries, pausing and ``as_of`` stay dataops', and a slot is never run twice however many runners and
orchestrators fire it.

Every value written into a generated file (schedule name, store, executable, cron, zone) is written as a Python
literal (``repr``) or by the YAML dumper, never pasted into code or into a Jinja template, so a store URL holding
quotes or ``{{`` stays data.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import yaml

from orchestrator.errors import DataopsError
from orchestrator.scheduling.cron import next_slots, previous_slot, zone
from orchestrator.scheduling.spec import CatchUp, Concurrency, ScheduleSpec
from orchestrator.scheduling.state import iso

# The trigger recorded with a slot an orchestrator fired (the tick's are cron, run-now's manual).
EXTERNAL = "external"
ORCHESTRATORS = ("airflow", "prefect")
# Variables an orchestrator's worker hands to dataops by default: which cloud of clouds.yaml, and where that is.
DEFAULT_PASS_ENV = ("OS_CLOUD", "OS_CLIENT_CONFIG_FILE")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class NotASlot(DataopsError):
    """A time given to ``run-slot`` is not one of the schedule's cron slots; the message names the nearest ones."""

    exit_code = 2


class SlotFailed(DataopsError):
    """The slot ``run-slot`` ran failed for good (retries included); its history record says why."""

    exit_code = 1


class SlotHeldElsewhere(DataopsError):
    """Another runner holds the slot's lease: it runs there now (the orchestrator may try again later)."""

    exit_code = 23


class SchedulePaused(DataopsError):
    """The schedule is paused in the store (by an operator, or after failing too often): ``run-slot`` runs
    nothing. The generated files read this exit code as "skipped", not as a failure."""

    exit_code = 24


@dataclass(frozen=True)
class ExportTarget:
    """How the orchestrator's workers reach dataops.

    Attributes:
        store: The store the schedule is kept in, as the workers name it.
        dataops_bin: The ``dataops`` executable on the workers.
        pass_env: Names of the variables handed from the worker's environment to dataops (never their values).
        start: The first instant the orchestrator considers (where the store's ticks left off).
        work_pool: The Prefect work pool of the deployment.
    """

    store: str
    dataops_bin: str = "dataops"
    pass_env: tuple[str, ...] = DEFAULT_PASS_ENV
    start: datetime | None = None
    work_pool: str = "default"

    def __post_init__(self) -> None:
        bad = [name for name in self.pass_env if not _ENV_NAME.fullmatch(name)]
        if bad:
            raise DataopsError(f"invalid environment variable name {bad[0]!r} for --pass-env: expected letters, "
                               "digits and underscores, not starting with a digit (such as OS_CLOUD)")


# --- which times are slots ----------------------------------------------------------------------------


def _wall(instant: datetime, tz: str) -> str:
    local = instant.astimezone(zone(tz))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def check_slot(spec: ScheduleSpec, instant: datetime) -> datetime:
    """``instant`` as a slot of ``spec``'s cron, or an error naming the slots around it.

    Args:
        spec: The schedule.
        instant: An aware time, such as an orchestrator's logical date.

    Returns:
        The slot, in UTC.

    Raises:
        NotASlot: The cron does not fire at ``instant`` in the schedule's zone.
    """
    instant = instant.astimezone(UTC)
    if next_slots(spec.cron, spec.timezone, instant - timedelta(seconds=1), 1)[0] == instant:
        return instant
    before = previous_slot(spec.cron, spec.timezone, instant)
    after = next_slots(spec.cron, spec.timezone, instant, 1)[0]
    nearest = [f"{iso(slot)} ({_wall(slot, spec.timezone)})" for slot in (before, after) if slot is not None]
    raise NotASlot(f"{instant.isoformat()} is not a slot of schedule {spec.name} (cron '{spec.cron}' in "
                   f"{spec.timezone}); the nearest slots are {' and '.join(nearest)}")


# --- days the orchestrator's cron disagrees with ours -----------------------------------------------------


def _transitions(tz: str, start: datetime, days: int) -> list[tuple[datetime, timedelta, timedelta]]:
    """The zone's offset changes after ``start``: (first instant of the new offset, offset before, after)."""
    local = zone(tz)
    found = []
    step, cursor, end = timedelta(hours=1), start.astimezone(UTC), start + timedelta(days=days)
    while cursor < end:
        before, after = cursor.astimezone(local).utcoffset(), (cursor + step).astimezone(local).utcoffset()
        if before != after:
            low, high = cursor, cursor + step  # low has the old offset, high the new one: halve to the minute
            while high - low > timedelta(minutes=1):
                middle = low + (high - low) / 2
                low, high = (middle, high) if middle.astimezone(local).utcoffset() == before else (low, middle)
            found.append((high.replace(second=0, microsecond=0), before, after))
        cursor += step
    return found


def _cron_names_between(cron: str, first: datetime, last: datetime) -> datetime | None:
    """The first wall-clock time in [first, last) the cron names, ignoring any zone (naive times read as UTC)."""
    named = next_slots(cron, "UTC", first - timedelta(seconds=1), 1)[0]
    return named if named < last else None


@dataclass(frozen=True)
class ClockChange:
    """A day around a daylight-saving change on which an orchestrator does not fire a slot as dataops counts it.

    Attributes:
        day: The local date of the change.
        slot: dataops' slot (UTC).
        fires_at: What the orchestrator fires instead (UTC); None when it fires nothing for the slot.
        reason: Why, in a few words.
    """

    day: str
    slot: datetime
    fires_at: datetime | None
    reason: str

    def __str__(self) -> str:
        instead = f"fires at {iso(self.fires_at)} instead, which run-slot refuses" if self.fires_at else \
            "does not fire it"
        return f"{self.day}: {self.reason}; the slot is {iso(self.slot)} but the orchestrator {instead} (a " \
               "backfill runs it)"


def clock_changes(spec: ScheduleSpec, orchestrator: str, start: datetime, days: int = 400) -> list[ClockChange]:
    """Where ``orchestrator`` will not fire the schedule's slots as dataops counts them, around daylight saving.

    dataops follows Debian's cron (orchestrator/scheduling/cron.py). Airflow's and Prefect's crons (croniter with
    their own zone handling) were measured against it: a daily time in the skipped hour fires an hour later than
    our slot in both; a daily time in the repeated hour fires in its second occurrence in Airflow (ours is the
    first); an hourly job runs the repeated hour twice here and in Airflow, once in Prefect. Elsewhere they agree
    (tests/integration/scheduling/test_export_to_airflow.py checks these against both).

    Args:
        spec: The schedule.
        orchestrator: ``airflow`` or ``prefect``.
        start: From when.
        days: How far ahead.

    Returns:
        The disagreements, oldest first (none for a zone without daylight saving).
    """
    hourly = spec.cron.split()[1] == "*"
    found = []
    for change, before, after in _transitions(spec.timezone, start, days):
        jump = after - before
        wall = (change + before).replace(tzinfo=UTC)  # the wall clock just before the change, as a naive time
        day = f"{change.astimezone(zone(spec.timezone)):%Y-%m-%d}"
        if jump > timedelta(0) and not hourly:
            named = _cron_names_between(spec.cron, wall, wall + jump)
            if named is not None:  # orchestrators move the time past the gap, dataops to the gap's end
                found.append(ClockChange(day, change, named - before, f"the cron names {named:%H:%M}, which "
                                                                      f"{spec.timezone} skips"))
        elif jump < timedelta(0):
            named = _cron_names_between(spec.cron, wall + jump, wall)
            if named is None:
                continue
            first = named - before
            second = first - jump
            reason = f"{named:%H:%M} happens twice in {spec.timezone}"
            if not hourly and orchestrator == "airflow":
                found.append(ClockChange(day, first, second, f"{reason}; dataops runs the first"))
            elif hourly and orchestrator == "prefect":
                found.append(ClockChange(day, second, None, f"{reason}; dataops runs both, prefect the first only"))
    return found


# --- what the generated files run ----------------------------------------------------------------------


def run_slot_argv(name: str, target: ExportTarget) -> list[str]:
    """The command an orchestrator's run executes, without its ``--slot``."""
    return [target.dataops_bin, "schedule", "run-slot", name, "--store", target.store]


def _literals(values: dict[str, object]) -> str:
    return "\n".join(f"{key} = {value!r}" for key, value in values.items())


def _catchup(spec: ScheduleSpec) -> tuple[bool, str]:
    """Airflow's ``catchup`` for the schedule's catch-up policy, and what the mapping leaves out."""
    deadline = f"; starting_deadline {spec.starting_deadline} is not enforced by Airflow" \
        if spec.starting_deadline else ""
    if spec.catchup is CatchUp.all:
        return True, (f"catch-up 'all': Airflow runs every slot it missed, oldest first, one at a time; "
                      f"max_catchup {spec.max_catchup} holds only for the slots missed before the export{deadline}")
    if spec.catchup is CatchUp.latest:
        return False, f"catch-up 'latest': after an outage Airflow runs the newest slot it missed, once{deadline}"
    return False, ("catch-up 'skip' has no Airflow equivalent: after an outage Airflow runs the newest slot it "
                   f"missed, once (as 'latest'){deadline}")


def _fill(template: str, parts: dict[str, str]) -> str:
    """``template`` with each ``@NAME@`` replaced by ``parts[NAME]``, in one pass: inserted text is never read again."""
    return re.sub(r"@([A-Z_]+)@", lambda match: parts[match[1]], template)


_AIRFLOW_DAG = '''\
"""Fires the slots of a dataops schedule (SCHEDULE below) from Airflow: written by `dataops schedule export
--to airflow`; export it again rather than edit it.

Each run calls `dataops schedule run-slot` with its logical date, which takes the slot's lease in the store, runs it
with the slot as as_of and keeps its history record (trigger "external"): history, leases, retries and pausing stay
in the store. Exit codes: 0 succeeded (or had already), 1 failed, 2 not a slot of the cron, 23 another runner holds
the slot, 24 the schedule is paused in the store (this task is then skipped).
"""

from __future__ import annotations

import datetime
import shlex

try:  # Airflow 3
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2 without the standard provider
    from airflow.operators.bash import BashOperator
from airflow.timetables.trigger import CronTriggerTimetable

@VALUES@

# Only the variables named in PASS_ENV reach dataops, with the worker's values at run time (this file holds none),
# and nothing else of the worker's environment does (Airflow's own connection strings and keys among it).
_ENV = "env -i PATH=\\"$PATH\\" HOME=\\"$HOME\\" " + " ".join(f'${{{name}+"{name}=${name}"}}' for name in PASS_ENV)
RUN_SLOT = f"exec {_ENV} " + shlex.join([DATAOPS, "schedule", "run-slot", SCHEDULE, "--store", STORE])

with DAG(
    dag_id=SCHEDULE,
    description="dataops schedule " + SCHEDULE,
    # A trigger timetable, so that a run's logical date IS its slot: the default cron timetable (data intervals)
    # fires at the END of each interval with logical_date = the interval's START, which would name the slot before.
    schedule=CronTriggerTimetable(CRON, timezone=TIMEZONE),
    start_date=datetime.datetime.fromisoformat(START),  # where the store's ticks left off
    catchup=CATCHUP,
@MAX_ACTIVE_RUNS@    # The command is a macro, not part of the template: a "{{" in a name or store is never Jinja.
    user_defined_macros={"dataops_run_slot": RUN_SLOT},
    tags=["dataops"],
) as dag:
    BashOperator(
        task_id="run_slot",
        bash_command="{{ dataops_run_slot }} --slot '{{ logical_date | ts }}'",
        # No Airflow retries: dataops retries the slot itself, with the schedule's backoff, every attempt recorded.
        retries=0,
        skip_on_exit_code=PAUSED_EXIT,
    )
'''


def airflow_dag(spec: ScheduleSpec, target: ExportTarget) -> str:
    """The text of an Airflow DAG file (Airflow 3; Airflow 2.6 and later too) that fires the schedule's slots.

    Args:
        spec: The schedule.
        target: How the workers reach dataops; ``start`` is the DAG's start date.

    Returns:
        Python source.
    """
    catchup, catchup_why = _catchup(spec)
    start = target.start or datetime.now(UTC)
    values = {
        "SCHEDULE": spec.name, "STORE": target.store, "DATAOPS": target.dataops_bin, "CRON": spec.cron,
        "TIMEZONE": spec.timezone, "PASS_ENV": tuple(target.pass_env),
        "START": start.astimezone(UTC).replace(microsecond=0).isoformat(),
        "CATCHUP": catchup, "PAUSED_EXIT": SchedulePaused.exit_code,
    }
    comment = "\n".join(f"# {line}" for line in textwrap.wrap(catchup_why, 114))
    forbid = ("    max_active_runs=1,  # concurrency 'forbid': one run at a time (Airflow queues a later slot where "
              "dataops skips it)\n") if spec.concurrency is Concurrency.forbid else ""
    return _fill(_AIRFLOW_DAG, {"VALUES": f"{_literals(values)}\n{comment}", "MAX_ACTIVE_RUNS": forbid})


_PREFECT_FLOW = '''\
"""Fires the slots of a dataops schedule (SCHEDULE below) from Prefect: written by `dataops schedule export
--to prefect`; export it again rather than edit it. `prefect deploy --all` beside it deploys it to a work pool
(prefect.yaml); `python flow.py` serves it from this process instead.

Each flow run calls `dataops schedule run-slot` with its scheduled start time, which takes the slot's lease in the
store, runs it with the slot as as_of and keeps its history record (trigger "external"): history, leases, retries
and pausing stay in the store. A run of a paused schedule ends Completed, named Skipped.
"""

from __future__ import annotations

import os
import subprocess

from prefect import flow
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

@VALUES@


@flow(name=SCHEDULE, retries=0, log_prints=True)
def run_slot(slot: str | None = None):
    """Run one slot of the schedule: the flow run's scheduled start time, or ``slot`` (ISO 8601) to run another.

    No Prefect retries: dataops retries the slot itself, with the schedule's backoff, every attempt recorded.
    """
    when = slot or flow_run.scheduled_start_time.isoformat()
    # Only PATH, HOME and the variables named in PASS_ENV reach dataops, with this worker's values.
    env = {name: os.environ[name] for name in ("PATH", "HOME", *PASS_ENV) if name in os.environ}
    argv = [DATAOPS, "schedule", "run-slot", SCHEDULE, "--slot", when, "--store", STORE]
    with subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        for line in process.stdout:
            print(line, end="")
    if process.returncode == PAUSED_EXIT:
        return Completed(name="Skipped", message=f"schedule {SCHEDULE} is paused in its store; slot {when} not run")
    if process.returncode != 0:
        return Failed(message=f"dataops schedule run-slot exited with {process.returncode} for slot {when}")
    return Completed(message=f"slot {when} succeeded")


if __name__ == "__main__":
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    run_slot.serve(
        name=SCHEDULE,
        schedules=[Cron(CRON, timezone=TIMEZONE)],
        # concurrency 'forbid': a slot due while the previous one runs is cancelled, as dataops skips it.
        global_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)
        if FORBID_OVERLAP else None,
    )
'''


def prefect_flow(spec: ScheduleSpec, target: ExportTarget) -> str:
    """The text of a Prefect 3 flow file that runs one slot per flow run (``python flow.py`` serves it).

    Args:
        spec: The schedule.
        target: How the workers reach dataops.

    Returns:
        Python source.
    """
    values = {
        "SCHEDULE": spec.name, "STORE": target.store, "DATAOPS": target.dataops_bin, "CRON": spec.cron,
        "TIMEZONE": spec.timezone, "PASS_ENV": tuple(target.pass_env),
        "FORBID_OVERLAP": spec.concurrency is Concurrency.forbid, "PAUSED_EXIT": SchedulePaused.exit_code,
    }
    return _fill(_PREFECT_FLOW, {"VALUES": _literals(values)})


def prefect_yaml(spec: ScheduleSpec, target: ExportTarget) -> str:
    """The text of the ``prefect.yaml`` deploying :func:`prefect_flow`'s file (``flow.py``) to a work pool.

    Args:
        spec: The schedule.
        target: How the workers reach dataops, and the work pool.

    Returns:
        YAML.
    """
    deployment: dict = {
        "name": spec.name,
        "description": f"dataops schedule {spec.name}: each run is `dataops schedule run-slot` of its slot",
        "entrypoint": "flow.py:run_slot",
        "schedules": [{"cron": spec.cron, "timezone": spec.timezone, "active": True}],
        "work_pool": {"name": target.work_pool},
    }
    if spec.concurrency is Concurrency.forbid:
        deployment["concurrency_limit"] = {"limit": 1, "collision_strategy": "CANCEL_NEW"}
    header = ("# Deploys flow.py (beside this file) with `prefect deploy --all`: written by `dataops schedule export "
              "--to prefect`.\n# Prefect has no catch-up setting: a worker back from an outage runs every late run, "
              "oldest first.\n")
    return header + yaml.safe_dump({"name": f"dataops-{spec.name}", "deployments": [deployment]}, sort_keys=False)
