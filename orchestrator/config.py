"""Settings in one place: an explicit option wins over the environment, which wins over the project file
(``dataops.yaml`` in the working folder), which wins over the defaults written here."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

DEFAULTS = {
    # Where every command reads and writes artifacts, runs and models.
    "store": "./.dataops",
    # Empty: start a LocalCluster sized to this machine.
    "scheduler": "",
}
PROJECT_FILE = "dataops.yaml"


def _project_settings() -> dict:
    path = Path(PROJECT_FILE)
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def setting(name: str, explicit: str | None = None) -> str:
    """Resolve one setting: explicit > ``DATAOPS_<NAME>`` > dataops.yaml > default."""
    if explicit:
        return explicit
    env = os.environ.get(f"DATAOPS_{name.upper()}")
    if env:
        return env
    return str(_project_settings().get(name, DEFAULTS[name]))
