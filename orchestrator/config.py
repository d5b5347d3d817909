"""Settings in one place: an explicit option wins over the environment, which wins over the project file
(``dataops.yaml`` in the working folder), which wins over the defaults written here."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from orchestrator.durations import parse_duration

DEFAULTS = {
    # Where every command reads and writes artifacts, runs and models.
    "store": "./.dataops",
    # Empty: start a LocalCluster sized to this machine.
    "scheduler": "",
    # Longest wait for a Heat stack to be created or updated (a cluster, an endpoint); `--timeout` on
    # `cluster create|scale` and `deploy|rollback`. Big clusters on busy clouds need more.
    "stack_timeout": "30m",
    # Longest wait for a Heat stack to be deleted; `--timeout` on `cluster delete` and `undeploy`.
    "stack_delete_timeout": "15m",
    # The private Swift container of the cloud where clusters' shared records are kept (their clocks), so that
    # every machine holding the cloud's credentials, schedule runners among them, sees the same clusters;
    # "none" keeps them on this machine only.
    "records_container": "dataops-records",
}
PROJECT_FILE = "dataops.yaml"


def _project_settings() -> dict:
    path = Path(PROJECT_FILE)
    if not path.is_file():
        return {}
    return yaml.safe_load(path.read_text()) or {}


def _resolve(name: str, explicit: str | None) -> tuple[str, str]:
    """The setting's value and where it came from: ``explicit``, the variable, the project file or the default."""
    if explicit:
        return explicit, "explicit"
    variable = f"DATAOPS_{name.upper()}"
    env = os.environ.get(variable)
    if env:
        return env, variable
    project = _project_settings()
    if name in project:
        return str(project[name]), f"{name} in {PROJECT_FILE}"
    return str(DEFAULTS[name]), f"the default {name}"


def setting(name: str, explicit: str | None = None) -> str:
    """Resolve one setting: explicit > ``DATAOPS_<NAME>`` > dataops.yaml > default."""
    return _resolve(name, explicit)[0]


def duration_setting(name: str, explicit: str | None = None, option: str = "") -> float:
    """Resolve a duration setting (same order as :func:`setting`) and read it as seconds.

    Args:
        name: The setting, a key of ``DEFAULTS`` such as ``stack_timeout``.
        explicit: The value given on the command line, if any.
        option: The option that gave ``explicit`` (``--timeout``), named when it is not a duration.

    Returns:
        The duration in seconds.

    Raises:
        InvalidDuration: The value is not a duration; the message names the option, the variable or the file
            it came from.
    """
    value, source = _resolve(name, explicit)
    return parse_duration(value, (option or name) if source == "explicit" else source)
