"""``dataops artifacts``: list what a store holds, share one artifact through a time-limited URL."""

from __future__ import annotations

import re

import typer

from orchestrator.artifacts.open import open_store
from orchestrator.cli.console import emit_json, err
from orchestrator.config import setting
from orchestrator.errors import DataopsError
from orchestrator.cli.options import StoreOption

artifacts_app = typer.Typer(help="List and share stored artifacts.", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in ``30s``, ``15m``, ``1h`` or ``7d``.

    Raises:
        DataopsError: the text is not a positive number followed by s, m, h or d.
    """
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise DataopsError(f"invalid duration {text!r}: expected a positive number and a unit s, m, h or d (e.g. 1h)")
    return int(match.group(1)) * _UNITS[match.group(2)]


@artifacts_app.command("list")
def list_artifacts(
    prefix: str = typer.Argument("", help="Only keys under this folder."),
    store: str = StoreOption,
) -> None:
    """Print the keys under PREFIX, one per line."""
    for key in open_store(setting("store", store)).list(prefix):
        typer.echo(key)


@artifacts_app.command("share")
def share(
    key: str = typer.Argument(..., help="Key of the artifact to share."),
    expires: str = typer.Option("1h", "--expires", help="How long the URL works: 30m, 1h, 7d..."),
    store: str = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print {url, expires_in} as JSON."),
) -> None:
    """Print a URL that downloads KEY without credentials until it expires (Swift TempURL)."""
    seconds = parse_duration(expires)
    target = open_store(setting("store", store))
    if not hasattr(target, "temp_url"):
        raise DataopsError(f"{target.uri} cannot share artifacts: sharing needs a swift:// store")
    url = target.temp_url(key, seconds)
    if as_json:
        emit_json({"key": key, "url": url, "expires_in": seconds})
    else:
        err.print(f"Anyone with this URL can download {key} for {expires}.")
        typer.echo(url)


def register(app: typer.Typer) -> None:
    """Add the ``artifacts`` command group to the root app."""
    app.add_typer(artifacts_app, name="artifacts")
