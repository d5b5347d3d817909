"""Options shared by several command groups."""

from __future__ import annotations

import typer

# Square brackets would be read as rich markup in --help, hence "optional" spelled out.
StoreOption = typer.Option(
    None, "--store", help="Artifact store: a path, file://PATH or swift://CONTAINER/PREFIX (prefix optional)."
)

# Every list and show command takes it: scripts read stdout as JSON, whatever a terminal would show.
JsonOption = typer.Option(False, "--json", help="Print JSON on stdout (for scripts), instead of a table.")
