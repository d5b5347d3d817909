"""``dataops experiment run|list|show|compare``."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import JsonOption, StoreOption

experiment_app = typer.Typer(help="Parameter sweeps of a pipeline, and their comparison.", no_args_is_help=True)

MARKS = {"succeeded": "[green]succeeded[/]", "failed": "[red]failed[/]", "running": "[cyan]running[/]",
         "interrupted": "[yellow]interrupted[/]", "pending": "[dim]pending[/]"}


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))


def _run_column() -> Column:
    # Run ids are what one copies into `runs show`: never cut.
    return Column("run", no_wrap=True, min_width=20)


def _point(parameters: dict) -> str:
    return ", ".join(f"{path}={_value(value)}" for path, value in parameters.items())


class PointProgress:
    """A line as each point starts and ends, and one for each stage a point computes (a cached one prints
    nothing: what points share shows as stages only the first of them computes)."""

    def __init__(self):
        self.total = 0
        self.metric = ""
        self._started: dict[tuple[int, str], float] = {}
        self._lock = threading.Lock()

    def started(self, run) -> None:
        self.total, self.metric = run.points, run.metric
        err.print(f"experiment [bold]{run.id}[/] ({escape(run.name)}): {run.points} points  store {run.store}")
        if run.dashboard:
            err.print(f"dask dashboard: {run.dashboard}")

    def point(self, point, event: str) -> None:
        where = f"point {point.point}/{self.total}"
        if event == "start":
            err.print(f"  {where} [cyan]start[/]     {_point(point.parameters)}")
        elif event == "reused":
            err.print(f"  {where} [dim]reused[/]    run {point.run_id}")
        elif event == "succeeded":
            value = point.metrics.get(self.metric)
            metric = f"{self.metric} {value:.4f}" if value is not None else f"no {self.metric}"
            err.print(f"  {where} [green]succeeded[/] run {point.run_id}  {metric}")
        else:
            err.print(f"  {where} [red]failed[/]    {escape(point.error or '')}")

    def stage(self, number: int, stage: str, event: str, info: dict) -> None:
        with self._lock:
            if event == "start":
                self._started[(number, stage)] = time.perf_counter()
            elif event == "done":
                elapsed = time.perf_counter() - self._started.pop((number, stage), time.perf_counter())
                err.print(f"    [dim]point {number} {stage:<18} {elapsed:6.1f}s[/]")


@experiment_app.command("run")
def run(
    pipeline: Path | None = typer.Argument(None, help="The pipeline YAML file (with --resume: the experiment's)."),
    grid: Path | None = typer.Option(None, "--grid", "-g", help="The grid YAML file: parameters and their values."),
    store: str | None = StoreOption,
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="An existing Dask scheduler (tcp://HOST:PORT or tls://HOST:PORT); default: a local cluster."
    ),
    cluster: str | None = typer.Option(
        None, "--cluster", help="Run on a cluster made by 'dataops cluster create' (over TLS; needs a swift:// store)."
    ),
    max_parallel: int = typer.Option(1, "--max-parallel", min=1, help="How many points run at once."),
    resume: str | None = typer.Option(
        None, "--resume", help="Continue this experiment: its finished points are reused, the others run."
    ),
) -> None:
    """Run PIPELINE at every point of the grid on one Dask cluster; stages the points share run once.

    Running the same command again reuses the points that succeeded and runs the missing and failed ones.
    """
    from orchestrator.usecases.experiments import run_experiment_files

    progress = PointProgress()
    record = run_experiment_files(pipeline, grid, store, scheduler, cluster, max_parallel, resume,
                                  on_start=progress.started, on_point=progress.point, on_stage=progress.stage)
    counts = record.counts()
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    err.print(f"experiment [bold]{record.id}[/]: {summary}; compare with: dataops experiment compare {record.id}")
    out.print(record.id)
    if record.status != "succeeded":
        err.print("some points failed: run the same command again to retry them")
        raise typer.Exit(1)


@experiment_app.command("list")
def list_(store: str | None = StoreOption, as_json: bool = JsonOption) -> None:
    """List the experiments of the store, oldest first."""
    from orchestrator.usecases.experiments import experiment_records

    records = experiment_records(store)
    if as_json:
        emit_json([{"id": r.id, "name": r.name, "pipeline": r.pipeline["path"], "status": r.status,
                    "created_at": r.created_at, "points": len(r.points), "counts": r.counts()} for r in records])
        return
    table = Table(Column("experiment", no_wrap=True, min_width=16), "name", "status", "ok/all", "metric",
                  Column("created", no_wrap=True, min_width=20))
    for r in records:
        table.add_row(r.id, escape(r.name), MARKS.get(r.status, r.status),
                      f"{r.counts().get('succeeded', 0)}/{len(r.points)}", r.metric["name"], r.created_at)
    out.print(table)


@experiment_app.command("show")
def show(
    exp_id: str = typer.Argument(..., metavar="ID", help="The experiment id, or 'latest'."),
    store: str | None = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the whole record as JSON."),
) -> None:
    """Show one experiment: its pipeline file, grid, and each point's parameters, run, status and metrics."""
    from orchestrator.usecases.experiments import experiment_record

    record = experiment_record(exp_id, store)
    if as_json:
        emit_json(record.to_dict())
        return
    out.print(f"experiment {record.id}  {record.status}  {escape(record.name)}")
    out.print(f"pipeline {escape(record.pipeline['path'])} (sha256 {record.pipeline['sha256'][:12]})  "
              f"grid {escape(record.grid_path)}  metric {record.metric['name']} ({record.metric['direction']})")
    parameters = list(record.grid.get("parameters", {}))
    table = Table("point", *parameters, "status", record.metric["name"], _run_column())
    for point in record.points:
        value = point.metrics.get(record.metric["name"])
        table.add_row(str(point.point), *(_value(point.parameters.get(p)) for p in parameters),
                      MARKS.get(point.status, point.status), _value(value) if value is not None else "-",
                      point.run_id or "-")
    out.print(table)
    for point in record.points:
        if point.error:
            out.print(f"point {point.point}: {escape(point.error)}")


@experiment_app.command("compare")
def compare(
    exp_id: str | None = typer.Argument(None, metavar="ID", help="The experiment id, or 'latest'."),
    schedule: str | None = typer.Option(
        None, "--schedule", help="Instead of an experiment: the metric over this schedule's runs, slot by slot."
    ),
    store: str | None = StoreOption,
    plot: Path | None = typer.Option(None, "--plot", help="Write a PNG: the metric against each parameter."),
    metric: str | None = typer.Option(None, "--metric", help="Rank by this metric; default: the experiment's."),
    as_json: bool = JsonOption,
) -> None:
    """Rank an experiment's points by its metric, best first (or follow a scheduled pipeline's metric over time)."""
    from orchestrator.usecases.experiments import compare_experiment, compare_schedule

    if (exp_id is None) == (schedule is None):
        err.print("Error: give an experiment ID or --schedule NAME (one of them)", markup=False)
        raise typer.Exit(2)
    if schedule is not None:
        series = compare_schedule(schedule, store, plot, metric)
        if as_json:
            emit_json(series.to_dict())
        else:
            table = Table("slot (UTC)", "as_of", _run_column(), "status", series.metric.name)
            for run in series.runs:
                table.add_row(run.slot, run.as_of, run.run_id, MARKS.get(run.status, run.status),
                              _value(run.value) if run.value is not None else "-")
            out.print(f"schedule {schedule}: {series.metric.name} ({series.metric.direction}) over "
                      f"{len(series.runs)} runs")
            out.print(table)
    else:
        comparison = compare_experiment(exp_id, store, plot, metric)
        if as_json:
            emit_json(comparison.to_dict())
        else:
            name = comparison.metric.name
            # A point without a value says why in its place (failed, pending): one column less to fit.
            table = Table("rank", "point", *comparison.parameters, f"{name} ({comparison.metric.direction})",
                          _run_column())
            for row in comparison.rows:
                value = f"[bold]{_value(row.value)}[/]" if row.rank == 1 else _value(row.value)
                table.add_row(str(row.rank or "-"), str(row.point),
                              *(_value(row.parameters.get(p)) for p in comparison.parameters),
                              value if row.value is not None else MARKS.get(row.status, row.status),
                              row.run_id or "-")
            out.print(f"experiment {comparison.experiment} ({escape(comparison.name)}): {len(comparison.rows)} "
                      f"points, best first by {name}")
            out.print(table)
    if plot is not None:
        err.print(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    """Add the ``experiment`` command group to the root app."""
    app.add_typer(experiment_app, name="experiment")
