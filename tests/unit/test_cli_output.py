"""Output that works in pipes and scripts: piped, a table never cuts a value; every --json says what it prints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer

from orchestrator.cli.main import app

DATAOPS = Path(sys.executable).with_name("dataops")
LONG_NAME = "nightly-sweep-of-every-expired-cluster-of-project-42"


def test_a_table_piped_into_another_command_keeps_every_value_whole(tmp_path):
    (tmp_path / "sweep.yaml").write_text(f"name: {LONG_NAME}\njob: cluster-sweep\ncron: '17 3 * * 1-5'\n"
                                         "timezone: America/Argentina/Buenos_Aires\n")
    store = str(tmp_path / "store")
    subprocess.run([str(DATAOPS), "schedule", "create", "-f", str(tmp_path / "sweep.yaml"), "--store", store],
                   check=True, capture_output=True)
    listed = subprocess.run([str(DATAOPS), "schedule", "list", "--store", store], check=True, capture_output=True,
                            text=True).stdout  # stdout is a pipe here, as in `dataops schedule list | grep ...`
    assert LONG_NAME in listed and "America/Argentina/Buenos_Aires" in listed and "…" not in listed


def _json_options(command, path=()):
    for name, sub in getattr(command, "commands", {}).items():
        yield from _json_options(sub, path + (name,))
    for param in getattr(command, "params", []):
        if "--json" in getattr(param, "opts", []):
            yield " ".join(path), param


@pytest.mark.parametrize("path, option", list(_json_options(typer.main.get_command(app))),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_every_json_option_says_what_it_prints(path, option):
    assert option.help and "JSON" in option.help, f"dataops {path} --json has no help"
