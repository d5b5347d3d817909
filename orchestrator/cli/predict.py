"""``dataops predict NAME[:VERSION|@STAGE] --input PATH|URL --output PATH``: batch scoring on Dask."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from orchestrator.cli.console import emit_json, err
from orchestrator.cli.options import StoreOption


def predict(
    ref: str = typer.Argument(..., help="Model: NAME (production, else newest), NAME:VERSION or NAME@STAGE."),
    input: str = typer.Option(..., "--input", "-i", help="Parquet, CSV or JSON lines file, folder or glob, or a URL."),
    output: Path = typer.Option(..., "--output", "-o", help="Parquet folder to create (must not exist)."),
    store: Optional[str] = StoreOption,
    scheduler: Optional[str] = typer.Option(
        None, "--scheduler", help="Dask scheduler address; default from settings, else threads in this process."
    ),
    range_policy: str = typer.Option(
        "reject", "--range-policy",
        help="A value outside the training range: reject (the row is refused, as `dataops serve` refuses it) or "
             "flag (scored, its column named in out_of_range).",
    ),
    raw: bool = typer.Option(
        False, "--raw",
        help="The input is new rows of the pipeline's base source: run its validation, cleaning, joins and feature "
             "steps first (the pipeline file that trained the model, unchanged since, unless --pipeline is given).",
    ),
    pipeline: Optional[Path] = typer.Option(
        None, "--pipeline", help="With --raw: prepare the rows with this pipeline file.",
    ),
) -> None:
    """Score a dataset with a registered model, partition by partition, and write the predictions.

    Each row keeps the server's input contract: a row `dataops serve` would refuse gets the server's message in the
    `refused` column and no prediction.
    """
    from orchestrator.usecases.predict import predict_batch

    if pipeline is not None and not raw:
        err.print("--pipeline prepares raw rows: add --raw")
        raise typer.Exit(2)
    record = predict_batch(ref, input, output, store, scheduler, range_policy, raw,
                           str(pipeline) if pipeline is not None else None)
    line = (f"Scored {record['scored']} of {record['rows']} rows with {record['model']['name']}:"
            f"{record['model']['version']} -> {output}")
    if record["refused"]:
        line += f"; refused {record['refused']} (commonest: {record['refusals'][0]['message']})"
    if record.get("flagged"):
        line += f"; {record['flagged']} with values outside the training range"
    quarantined = record.get("prepared_by", {}).get("quarantined")
    if quarantined:
        line += f"; {quarantined} broke the source's rules (kept in {output / '_quarantine'})"
    err.print(line)
    emit_json(record)


def register(app: typer.Typer) -> None:
    """Add the ``predict`` command to the root app."""
    app.command("predict")(predict)
