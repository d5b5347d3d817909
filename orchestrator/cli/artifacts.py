"""``dataops artifacts``: list what a store holds, share one artifact through a time-limited URL."""

from __future__ import annotations

import typer

from orchestrator.cli.console import emit_json, err
from orchestrator.usecases import artifacts as use_cases
from orchestrator.durations import parse_duration
from orchestrator.cli.options import StoreOption

artifacts_app = typer.Typer(help="List and share stored artifacts.", no_args_is_help=True)


@artifacts_app.command("list")
def list_artifacts(
    prefix: str = typer.Argument("", help="Only keys under this folder."),
    store: str = StoreOption,
) -> None:
    """Print the keys under PREFIX, one per line."""
    for key in use_cases.list_artifacts(prefix, store):
        typer.echo(key)


@artifacts_app.command("share")
def share(
    key: str = typer.Argument(..., help="Key of the artifact to share."),
    expires: str = typer.Option("1h", "--expires", help="How long the URL works: 30m, 1h, 7d..."),
    store: str = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print {url, expires_in} as JSON."),
) -> None:
    """Print a URL that downloads KEY without credentials until it expires (Swift TempURL)."""
    seconds = int(parse_duration(expires, "--expires"))
    url = use_cases.share_artifact(key, seconds, store)
    if as_json:
        emit_json({"key": key, "url": url, "expires_in": seconds})
    else:
        err.print(f"Anyone with this URL can download {key} for {expires}.")
        typer.echo(url)


def register(app: typer.Typer) -> None:
    """Add the ``artifacts`` command group to the root app."""
    app.add_typer(artifacts_app, name="artifacts")
