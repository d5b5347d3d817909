"""``dataops drift check | report | profile``: served models' inputs and outputs against their training reference."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table

from orchestrator.cli import drift_profile
from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.options import StoreOption

drift_app = typer.Typer(help="Check served models for drift against their reference profile, and report it.",
                        no_args_is_help=True)

_STYLES = {"drift": "bold red", "warning": "yellow", "insufficient_data": "dim"}


def _figure(value) -> str:
    return "-" if value is None else f"{value:.4g}"


@drift_app.command("check")
def check(
    ref: Optional[str] = typer.Argument(None, metavar="MODEL",
                                        help="NAME, NAME:VERSION or NAME@STAGE; optional with --endpoint."),
    endpoint: Optional[str] = typer.Option(None, "--endpoint", "-e",
                                           help="Check the version this endpoint serves, with the captures of "
                                                "the store it was deployed from."),
    window: Optional[str] = typer.Option(None, "--window", help="Captured in this span up to --until or now, "
                                                                 "such as 24h or 7d (default 24h)."),
    since: Optional[str] = typer.Option(None, "--since", help="Captured at or after this time (ISO 8601)."),
    until: Optional[str] = typer.Option(None, "--until", help="Captured before this time (ISO 8601; default now)."),
    last_rows: Optional[int] = typer.Option(None, "--last-rows", help="The newest N captured rows instead of a span."),
    data: Optional[str] = typer.Option(None, "--data", help="Check this dataset instead of captures: CSV, Parquet "
                                                            "or JSON lines (dataops predict output included)."),
    store: Optional[str] = StoreOption,
    capture_dir: Optional[Path] = typer.Option(None, "--capture-dir", help="Read captures from this folder "
                                                                           "(dataops serve --capture-dir) instead "
                                                                           "of the store's captures/."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Dask scheduler counting --data; default "
                                                                      "from settings, else threads here."),
    as_json: bool = typer.Option(False, "--json", help="Print the stored result record as JSON on stdout."),
) -> None:
    """Check a model version's window against its reference: table, verdict, result and report in the store.

    Exit codes: 0 no drift (warnings included), 20 drift, 21 insufficient data (fewer rows than min_rows).

    Errors exit with their own codes: 2 bad options, 8 unknown model or no profile, 12 data lacking an input.
    """
    from orchestrator.usecases.drift import check_model_drift

    done = check_model_drift(ref, endpoint=endpoint, window=window, since=since, until=until, last_rows=last_rows,
                             data=data, store=store, capture_dir=capture_dir, scheduler=scheduler)
    if as_json:
        emit_json(done.record)
    else:
        _print_result(done.record)
    raise typer.Exit(done.exit_code)


def _print_result(record: dict) -> None:
    result, model = record["result"], record["lineage"]["model"]
    table = Table("column", "statistic", "value", "threshold", "verdict",
                  title=f"{model['name']}:{model['version']}, {result['rows']:,} rows")
    for column in result["columns"]:
        for statistic in column["statistics"]:
            verdict = statistic["verdict"] if statistic.get("threshold") is not None else "reported"
            table.add_row(column["name"], statistic["name"], _figure(statistic["value"]),
                          _figure(statistic.get("threshold")), verdict.replace("_", " "),
                          style=_STYLES.get(verdict) if verdict != "no_drift" else None)
    out.print(table)
    style = _STYLES.get(result["verdict"], "green")
    reasons = f": {escape('; '.join(result['reasons']))}" if result["reasons"] else ""
    err.print(f"[{style}]{result['verdict'].replace('_', ' ')}[/]{reasons}")
    err.print(f"Result: {record['files']['result']}  Report: {record['files']['report']}", markup=False)


@drift_app.command("report")
def report(
    ref: str = typer.Argument(..., metavar="MODEL", help="NAME, NAME:VERSION or NAME@STAGE."),
    checks: int = typer.Option(30, "--checks", min=1, help="Show the statistics over this many latest checks."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="HTML file to write (default MODEL-VERSION-drift.html here)."),
    store: Optional[str] = StoreOption,
) -> None:
    """Write a model version's HTML drift report: summary, histograms, statistics over time; offline, no rows."""
    from orchestrator.usecases.drift import write_drift_report

    path = write_drift_report(ref, output, checks, store)
    err.print(f"Report written to {path}", markup=False)


drift_profile.register(drift_app)


def register(app: typer.Typer) -> None:
    """Add the ``drift`` command group to the root app."""
    app.add_typer(drift_app, name="drift")
