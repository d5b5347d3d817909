"""``dataops schedule export|run-slot``: hand a schedule's timing to Airflow or Prefect, and the command their runs
execute."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from orchestrator.cli.console import err, out
from orchestrator.cli.options import StoreOption


class Orchestrator(str, Enum):
    airflow = "airflow"
    prefect = "prefect"


def export(
    name: str = typer.Argument(...),
    to: Orchestrator = typer.Option(..., "--to", help="The orchestrator: airflow (a DAG file) or prefect (a flow "
                                                      "and its prefect.yaml)."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Folder to write into (the DAGs folder, say)."),
    store: str | None = StoreOption,
    dataops_bin: str = typer.Option("dataops", "--dataops-bin", help="The dataops executable on the workers."),
    pass_env: list[str] = typer.Option([], "--pass-env", help="A variable of the workers' environment handed to "
                                                              "dataops, by name, besides OS_CLOUD and "
                                                              "OS_CLIENT_CONFIG_FILE; repeatable."),
    work_pool: str = typer.Option("default", "--work-pool", help="Prefect: the work pool of the deployment."),
) -> None:
    """Write an Airflow DAG or a Prefect deployment firing NAME's slots through `dataops schedule run-slot`.

    The store keeps the history, leases, retries and the pause flag; the orchestrator only says when. Once it
    fires the slots, stop ticking the store: if both fire, each slot still runs once, and the later caller exits
    0 once the slot has succeeded, 23 while it runs.
    """
    from orchestrator.usecases.schedule_export import export_schedule

    exported = export_schedule(name, to.value, output, store, dataops_bin, pass_env, work_pool)
    err.print(f"schedule [bold]{name}[/] exported to {to.value}; slots from {exported.start:%Y-%m-%d %H:%M:%S}Z on; "
              f"each run executes: {' '.join(exported.command)} --slot TIME", markup=False)
    for change in exported.clock_changes:
        err.print(f"Warning: {change}", markup=False)
    for path in exported.files:
        out.print(str(path), markup=False)


def run_slot(
    name: str = typer.Argument(...),
    slot: str = typer.Option(..., "--slot", help="The slot, ISO 8601 (UTC if no zone): the run's logical date."),
    store: str | None = StoreOption,
    runner: str | None = typer.Option(None, "--runner", help="This runner's identity, as the leases record it."),
) -> None:
    """Run the slot SLOT of NAME here, through the same lease and history as a tick: what an orchestrator runs.

    Exit codes: 0 succeeded (or had already), 1 failed (retries included), 2 not a slot of the cron,
    23 another runner holds the slot, 24 the schedule is paused in the store.
    """
    from orchestrator.cli.run import StageProgress
    from orchestrator.usecases.schedule_export import run_external_slot
    from orchestrator.usecases.schedules import parse_time

    outcome = run_external_slot(name, parse_time(slot, "--slot"), store, runner, on_event=StageProgress())
    detail = f"run {outcome.run_id}" if outcome.run_id else outcome.reason
    err.print(f"  {outcome.action:<10} {outcome.schedule} {outcome.slot}  {detail}", markup=False)


def register(schedule_app: typer.Typer) -> None:
    """Add ``export`` and ``run-slot`` to the ``schedule`` command group."""
    schedule_app.command("export")(export)
    schedule_app.command("run-slot")(run_slot)
