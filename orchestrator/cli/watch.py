"""``dataops watch`` (the closed loop on this machine), ``dataops watch history``, ``dataops approve`` and
``dataops reject``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import StoreOption

watch_app = typer.Typer(
    help="Watch a served model: check its captures for drift every interval, retrain when the drift is sustained, "
         "deploy the challenger only if it beats the champion on fresh labels.",
    invoke_without_command=True,
)
MARKS = {"promoted": "[green]promoted[/]", "rejected": "[yellow]rejected[/]", "failed": "[red]failed[/]",
         "awaiting_approval": "[cyan]awaiting approval[/]", "running": "[cyan]running[/]"}


def _time(text: str | None, option: str):
    from orchestrator.usecases.schedules import parse_time

    return parse_time(text, option) if text else None


def _print_report(report) -> None:
    decision = report.decision
    check = report.check
    err.print(f"{report.now:%Y-%m-%d %H:%M:%S}Z {report.served}: {check['verdict'].replace('_', ' ')} on "
              f"{check['rows']:,} rows (check {check['id']}); decision [bold]{decision.code}[/]: {decision.reason}")
    if report.comparison is not None:
        err.print(f"  comparison {report.comparison.id}: {report.comparison.winner} wins "
                  f"({report.comparison.code}): {report.comparison.reason}", markup=False)
    if report.retrain is not None:
        outcome = MARKS.get(report.retrain.outcome, report.retrain.outcome)
        reason = report.retrain.details.get("reason")
        err.print(f"  retrain {report.retrain.number} (run {report.run_id or '-'}, challenger "
                  f"{report.challenger or '-'}): {outcome}{': ' + reason if reason else ''}")
    parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.timings.items())
    err.print(f"  [dim]{parts}[/]")


@watch_app.callback()
def watch(
    ctx: typer.Context,
    pipeline: Optional[Path] = typer.Option(None, "--pipeline", "-p", help="The pipeline file: its monitoring "
                                            "section is the policy, a run of it is a retrain."),
    server: Optional[str] = typer.Option(None, "--server", help="A local inference server's base URL, such as "
                                         "http://127.0.0.1:8080."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", "-e", help="An endpoint made by dataops deploy."),
    token_file: Optional[Path] = typer.Option(None, "--token-file", help="The server's bearer token file."),
    repository_dir: Optional[Path] = typer.Option(None, "--repository-dir", help="The server's --repository-dir: "
                                                  "a winning challenger is placed there for it to load."),
    capture_dir: Optional[Path] = typer.Option(None, "--capture-dir", help="The server's --capture-dir, when it "
                                               "captures to a folder instead of the store."),
    target: Optional[str] = typer.Option(None, "--target", help="The name the loop's records are kept under "
                                         "(default: the endpoint, else the model)."),
    store: Optional[str] = StoreOption,
    every: Optional[str] = typer.Option(None, "--every", help="Interval between steps (default: the policy's "
                                        "monitoring.watch.every, each window's length)."),
    once: bool = typer.Option(False, "--once", help="One step, then exit (its error is the exit code)."),
    now: Optional[str] = typer.Option(None, "--now", help="With --once: the step's time, ISO 8601 (tests)."),
    as_of: Optional[str] = typer.Option(None, "--as-of", help="The time retrains are for, when the data's clock "
                                        "is not the wall clock (a replayed history); default: the step's time."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler address for retrains."),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="A cluster made by dataops cluster create."),
    as_json: bool = typer.Option(False, "--json", help="Print each step's report as JSON on stdout."),
) -> None:
    """Watch a served model (a local server or an endpoint) and close the loop: drift, retrain, compare, deploy."""
    if ctx.invoked_subcommand is not None:
        return
    if pipeline is None:
        raise typer.BadParameter("give the pipeline file that retrains the model", param_hint="--pipeline")
    from orchestrator.usecases.watch import Watch, run_watch_loop

    spec = Watch(pipeline, endpoint=endpoint, server=server, token_file=token_file, repository_dir=repository_dir,
                 target=target, store=store, capture_dir=capture_dir, scheduler=scheduler, cluster=cluster,
                 as_of=_time(as_of, "--as-of"))

    def report(result) -> None:
        if as_json:
            emit_json(result.to_dict())
        else:
            _print_report(result)

    run_watch_loop(spec, every, once=once, now=_time(now, "--now"), on_report=report,
                   on_error=lambda message: err.print(f"[red]step failed[/]: {message}"),
                   on_step=lambda message: err.print(f"  [dim]{message}[/]"))


@watch_app.command("history")
def history(
    target: str = typer.Argument(..., help="The watch's target: its endpoint, or its model."),
    store: Optional[str] = StoreOption,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the newest retrains."),
    as_json: bool = typer.Option(False, "--json", help="Print the lineage as JSON on stdout."),
) -> None:
    """The lineage of each retrain: drift -> decision -> retrain run -> model version -> comparison -> approval ->
    deploy, one line per step."""
    from orchestrator.usecases.watch_history import watch_history

    data = watch_history(target, store, limit)
    if as_json:
        emit_json(data)
        return
    if not data["retrains"]:
        err.print(f"no retrain of {target} in {data['store']}")
    for retrain in data["retrains"]:
        out.print(f"retrain {retrain['number']}  {MARKS.get(retrain['outcome'], retrain['outcome'])}  started "
                  f"{retrain['started']}")
        for step in retrain["steps"]:
            ref = f"{step['ref']}  " if step["ref"] else ""
            out.print(f"  {step['step']:<14} {ref}{step['text']}", markup=False)
    latest = data["latest_decision"]
    if latest:
        out.print(f"latest decision {latest['at']} on {latest['model']}: {latest['code']}: {latest['reason']}",
                  markup=False)


def _show_pending(pending) -> None:
    comparison = pending.comparison
    err.print(f"retrain {pending.retrain.number} of {pending.target}: challenger "
              f"{pending.retrain.details.get('challenger')} against {pending.retrain.details.get('champion')}",
              markup=False)
    if comparison is None:
        err.print("  (its comparison record is missing)")
        return
    def number(value) -> str:
        return "-" if value is None else f"{value:.4f}"

    values = (f"{comparison.metric}: challenger {number(comparison.challenger_value)}, champion "
              f"{number(comparison.champion_value)}, delta {number(comparison.delta)}, margin {comparison.margin:g} "
              f"({comparison.direction} is better)")
    err.print(f"  {values}", markup=False)
    err.print(f"  holdout: {comparison.holdout.get('rows')} rows from {comparison.holdout.get('from')} to "
              f"{comparison.holdout.get('until')} (run {comparison.holdout.get('run_id')}); parity "
              f"{comparison.parity_passed}, smoke test {comparison.smoke_passed}", markup=False)
    err.print(f"  {comparison.winner} wins ({comparison.code}): {comparison.reason}", markup=False)


def approve(
    target: str = typer.Argument(..., help="The watch's target: its endpoint, or its model."),
    store: Optional[str] = StoreOption,
) -> None:
    """Deploy the challenger waiting for approval (its comparison is shown first)."""
    from orchestrator.usecases.watch import approve_retrain

    retrain = approve_retrain(target, store, on_pending=_show_pending,
                              on_step=lambda message: err.print(f"  [dim]{message}[/]"))
    err.print(f"{retrain.details['challenger']} serves on {target}: retrain {retrain.number} promoted.",
              markup=False)


def reject(
    target: str = typer.Argument(..., help="The watch's target: its endpoint, or its model."),
    reason: Optional[str] = typer.Option(None, "--reason", help="Why, for the record."),
    store: Optional[str] = StoreOption,
) -> None:
    """Keep the champion: the challenger waiting for approval stays registered, never deployed."""
    from orchestrator.usecases.watch import reject_retrain

    retrain = reject_retrain(target, reason, store, on_pending=_show_pending)
    err.print(f"retrain {retrain.number} of {target} rejected: {retrain.details['reason']}", markup=False)


def register(app: typer.Typer) -> None:
    """Add ``watch`` (with ``watch history``), ``approve`` and ``reject`` to the root app."""
    app.add_typer(watch_app, name="watch")
    app.command("approve")(approve)
    app.command("reject")(reject)
