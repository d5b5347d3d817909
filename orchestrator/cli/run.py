"""``dataops run`` and ``dataops runs list|show|compare``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import JsonOption, StoreOption


def _rows(value) -> str:
    return f"{value:,}" if isinstance(value, int) else "-"


class StageProgress:
    """One line per stage: name, elapsed time, rows in and out."""

    def __init__(self):
        self._started: dict[str, float] = {}
        self._status = None

    def __call__(self, stage: str, event: str, info: dict) -> None:
        if event == "start":
            self._started[stage] = time.perf_counter()
            self._status = err.status(f"{stage} ...")
            self._status.start()
            return
        if self._status is not None:
            self._status.stop()
            self._status = None
        elapsed = time.perf_counter() - self._started.get(stage, time.perf_counter())
        mark = "[green]done[/]  " if event == "done" else "[dim]cached[/]"
        detail = f"{_rows(info.get('rows_in'))} -> {_rows(info.get('rows_out'))} rows"
        if info.get("quarantined"):
            detail += f", {info['quarantined']:,} quarantined"
        if info.get("joins"):
            detail += "; matched " + ", ".join(
                f"{j['source']} {'-' if j['match_rate'] is None else format(j['match_rate'], '.1%')}"
                for j in info["joins"])
        if "version" in info:
            detail = f"{info['model']} version {info['version']}" + ("" if info.get("created") else " (unchanged)")
        if "metrics" in info:
            metrics = info["metrics"]
            names = [k for k in ("roc_auc", "accuracy", "log_loss", "rmse", "mae", "r2") if k in metrics]
            detail = ", ".join(f"{k} {metrics[k]:.4f}" for k in names)
            baseline = metrics.get("baseline", {})
            if baseline.get("strategy") == "majority_class":
                # A constant prediction scores roc_auc 0.5 by construction: its accuracy and log loss are the bar.
                shown = [k for k in ("accuracy", "log_loss") if k in baseline]
                detail += " (majority-class baseline " + ", ".join(f"{k} {baseline[k]:.4f}" for k in shown) + ")"
            elif names and names[0] in baseline:
                detail += f" (baseline {names[0]} {baseline[names[0]]:.4f})"
        if "best_score" in info:
            detail = f"{len(info.get('candidates') or [])} candidates, best validation score {info['best_score']:.4f}"
        if "parity" in info:
            parity = info["parity"]
            detail = f"ONNX parity on {parity.get('rows', 0):,} test rows: "
            if "max_abs_proba_diff" in parity:  # a classifier's
                detail += (f"{parity.get('label_mismatches')} label mismatches, max probability gap "
                           f"{parity['max_abs_proba_diff']:.1e}")
            else:
                detail += f"max prediction gap {parity.get('max_abs_diff', 0):.1e}"
        seconds = f"{elapsed:7.1f}s" if event == "done" else " " * 8
        err.print(f"  {mark} {stage:<22} {seconds}  {detail}")

    def tuning(self, done: int, total: int, best: float | None) -> None:
        if self._status is not None:
            best_text = f", best {best:.4f}" if best is not None else ""
            self._status.update(f"train ... {done}/{total} candidates{best_text}")


def run(
    pipeline: Path = typer.Argument(..., help="The pipeline YAML file.", exists=False),
    store: Optional[str] = StoreOption,
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="An existing Dask scheduler (tcp://HOST:PORT or tls://HOST:PORT); default: a local cluster."
    ),
    cluster: Optional[str] = typer.Option(
        None, "--cluster", help="Run on a cluster made by 'dataops cluster create' (over TLS; needs a swift:// store)."
    ),
) -> None:
    """Run PIPELINE: ingest, validate, blend, prepare features, split, train, evaluate, export, register."""
    from orchestrator.usecases.run import run_pipeline_file

    def started(run) -> None:
        err.print(f"pipeline [bold]{run.pipeline}[/]  store {run.store}" + (f"  cluster {run.cluster}" if run.cluster else ""))
        err.print(f"dask dashboard: {run.dashboard}")

    progress = StageProgress()
    result = run_pipeline_file(pipeline, store, scheduler, cluster, on_start=started, on_event=progress,
                               on_progress=progress.tuning)
    err.print(f"run [bold]{result.run_id}[/] succeeded in {result.record['elapsed_s']:.1f}s")
    out.print(result.run_id)


runs_app = typer.Typer(help="Inspect and compare run records.", no_args_is_help=True)


@runs_app.command("list")
def runs_list(store: Optional[str] = StoreOption, as_json: bool = JsonOption) -> None:
    """List runs, newest last."""
    from orchestrator.usecases.run import run_records

    records = run_records(store)
    if as_json:
        emit_json([{k: r.get(k) for k in ("run_id", "status", "started_at", "elapsed_s", "metrics")} for r in records])
        return
    table = Table("run", "pipeline", "status", "started", "seconds", "stages ran/cached")
    for r in records:
        statuses = [s.get("status") for s in r.get("stages", {}).values()]
        table.add_row(r["run_id"], r["pipeline"]["name"], r["status"], r["started_at"], str(r.get("elapsed_s", "")),
                      f"{statuses.count('ran')}/{statuses.count('cached')}")
    out.print(table)


@runs_app.command("show")
def runs_show(
    run_id: str = typer.Argument(..., help="Run id, or 'latest'."),
    store: Optional[str] = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the whole record as JSON."),
) -> None:
    """Show one run: stages, rows, what each read, artifacts with their sha256, metrics."""
    from orchestrator.usecases.run import run_record

    record = run_record(run_id, store)
    if as_json:
        emit_json(record)
        return
    out.print(f"run {record['run_id']}  {record['status']}  pipeline {record['pipeline']['name']} "
              f"({record['pipeline']['path']}, sha256 {record['pipeline']['sha256'][:12]})")
    if record.get("status_reason"):
        out.print(f"{record['status']}: {record['status_reason']}", markup=False)
    if record.get("error"):
        out.print(f"error: {record['error']}")
    table = Table("stage", "status", "seconds", "rows in", "rows out", "read", "output sha256")
    for name, stage in record["stages"].items():
        reads = ", ".join(f"{p} {r['fingerprint']}" for p, r in stage.get("reads", {}).items())
        sha = stage["outputs"][0]["sha256"][:12] if stage.get("outputs") else ""
        table.add_row(name, stage.get("status", ""), str(stage.get("elapsed_s", "")), _rows(stage.get("rows_in")),
                      _rows(stage.get("rows_out")), reads, sha)
    out.print(table)
    for key, value in record.get("metrics", {}).items():
        if isinstance(value, (int, float)):
            out.print(f"  {key}: {value:.4f}")
    from orchestrator.usecases.watch_history import run_loop_mention

    if mention := run_loop_mention(record, store):
        out.print(f"closed loop: {mention}", markup=False)


@runs_app.command("compare")
def runs_compare(
    first: str = typer.Argument(...),
    second: str = typer.Argument(...),
    store: Optional[str] = StoreOption,
    as_json: bool = JsonOption,
) -> None:
    """What changed between two runs: parameters, recomputed stages, metrics."""
    from orchestrator.usecases.run import compare_runs

    diff = compare_runs(first, second, store)
    if as_json:
        emit_json(diff)
        return
    for section, changes in diff.items():
        out.print(f"[bold]{section}[/]: {'no difference' if not changes else ''}")
        for key, (a, b) in changes.items():
            out.print(f"  {key}: {a} -> {b}")


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.add_typer(runs_app, name="runs")
