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
) -> None:
    """Score a dataset with a registered model, partition by partition, and write the predictions."""
    from orchestrator.usecases.predict import predict_batch

    record = predict_batch(ref, input, output, store, scheduler)
    err.print(f"Scored {record['rows']} rows with {record['model']['name']}:{record['model']['version']} "
              f"-> {output}")
    emit_json(record)


def register(app: typer.Typer) -> None:
    """Add the ``predict`` command to the root app."""
    app.command("predict")(predict)
