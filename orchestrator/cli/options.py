"""Options shared by several command groups."""

from __future__ import annotations

import typer

# Square brackets would be read as rich markup in --help, hence "optional" spelled out.
StoreOption = typer.Option(
    None, "--store", help="Artifact store: a path, file://PATH or swift://CONTAINER/PREFIX (prefix optional)."
)
