"""``dataops drift profile``: build the reference profile of a model registered before profiles existed."""

from __future__ import annotations

from typing import Optional

import typer

from orchestrator.cli.console import err, out
from orchestrator.cli.options import StoreOption


def profile(
    ref: str = typer.Argument(..., help="NAME, NAME:VERSION or NAME@STAGE."),
    store: Optional[str] = StoreOption,
) -> None:
    """Build a model's reference profile from its training run's train and validation partitions.

    Models exported with a profile need none; for older ones it is stored at
    monitoring/NAME/VERSION/reference_profile.json in the store, where drift checks find it.
    """
    from orchestrator.usecases.drift_profile import build_profile_command

    built = build_profile_command(ref, store)
    if built is None:
        err.print(f"{ref} already holds its reference profile in its model folder; nothing to build.")
        return
    err.print(f"Built the reference profile of {built.model}:{built.version} ({built.columns} columns) from run "
              f"{built.run_id}: {built.train_rows:,} train rows, outputs on {built.validation_rows:,} validation rows.")
    out.print(built.key, markup=False)


def register(drift_app: typer.Typer) -> None:
    """Add the ``profile`` command to the ``drift`` command group."""
    drift_app.command("profile")(profile)
