"""``dataops schema pipeline|cluster|endpoint|runner|schedule|grid [--format json|markdown] [--output FILE]``."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path

import typer

from orchestrator.cli.console import err
from orchestrator.usecases.schema import FILE_KINDS

schema_app = typer.Typer(
    help="The JSON Schema (draft 2020-12) of each file users write, or its reference page. An editor checks a file "
         "against its schema when the file's first line names it: # yaml-language-server: $schema=PATH",
    no_args_is_help=True,
)


class Format(str, Enum):
    json = "json"
    markdown = "markdown"


def _command(kind: str, what: str):
    def command(
        output: Path | None = typer.Option(None, "--output", "-o", help="Write it to this file instead of stdout."),
        fmt: Format = typer.Option(Format.json, "--format", help="json: the JSON Schema; markdown: a reference "
                                                                 "page of every field."),
    ) -> None:
        from orchestrator.usecases.schema import schema_text, write_schema

        if output is None:
            sys.stdout.write(schema_text(kind, fmt.value))
            return
        write_schema(kind, output, fmt.value)
        err.print(f"wrote the {'JSON Schema' if fmt is Format.json else 'reference'} of {what} to {output}")

    command.__doc__ = f"Print the JSON Schema of {what}, or its reference page (--format markdown)."
    return command


for _kind, _what in FILE_KINDS.items():
    schema_app.command(_kind)(_command(_kind, _what))


def register(app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
