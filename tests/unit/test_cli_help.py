"""Every command of the CLI prints its help: option texts must render (rich reads square brackets as markup)."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from orchestrator.cli.main import app


def _command_paths(command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, path + (name,))
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "dataops")
def test_help_renders(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output or repr(result.exception)
    assert "Usage" in result.output
