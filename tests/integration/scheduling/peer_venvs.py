"""Virtualenvs of the orchestrators dataops exports schedules to (Airflow, Prefect), each of its own so that their
dependencies never meet the project's: made once with the stdlib venv and pip, then cached across runs under
``/var/cache/dataops-peers`` (``DATAOPS_PEERS_CACHE`` elsewhere).

Airflow publishes a constraints file per release and Python version; a run that can fetch it names it in
``DATAOPS_AIRFLOW_CONSTRAINTS`` (a URL or a file). Without it the release alone is pinned, which resolves here.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("DATAOPS_PEERS_CACHE", "/var/cache/dataops-peers"))
INSTALL_TIMEOUT_S = 600


@dataclass(frozen=True)
class Peer:
    """An orchestrator's virtualenv: its folder name and what pip installs in it."""

    folder: str
    requirements: tuple[str, ...]
    constraints_variable: str | None = None

    def pip_arguments(self) -> list[str]:
        constraints = os.environ.get(self.constraints_variable, "") if self.constraints_variable else ""
        return [*self.requirements, *(["--constraint", constraints] if constraints else [])]


AIRFLOW = Peer("airflow-venv", ("apache-airflow==3.3.2",), "DATAOPS_AIRFLOW_CONSTRAINTS")
PREFECT = Peer("prefect-venv", ("prefect==3.9.1",))


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def peer_python(peer: Peer) -> tuple[Path, float | None]:
    """The Python of ``peer``'s virtualenv, made if missing or made for other requirements.

    Returns:
        The interpreter, and the seconds it took to make the virtualenv (None when it came from the cache).
    """
    folder = CACHE / peer.folder
    python = folder / "bin" / "python"
    stamp = folder / ".dataops-installed"
    wanted = json.dumps({"python": sys.version.split()[0], "pip": peer.pip_arguments()})
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        lock = open(CACHE / f"{peer.folder}.lock", "w")
    except OSError as exc:
        _unavailable(f"cannot use the virtualenv cache {CACHE} ({exc}); set DATAOPS_PEERS_CACHE")
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes never build the same virtualenv at once
        if stamp.is_file() and stamp.read_text() == wanted and python.is_file():
            return python, None
        shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        venv.EnvBuilder(with_pip=True).create(folder)
        done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               *peer.pip_arguments()], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            _unavailable(f"pip could not install {' '.join(peer.requirements)}: {done.stderr.strip()[-2000:]}")
        took = time.monotonic() - started
        (folder / ".dataops-made-in-s").write_text(f"{took:.1f}\n")
        stamp.write_text(wanted)  # last: a virtualenv killed while made is made again
        return python, took


def run_probe(python: Path, script: Path, request: dict, env: dict[str, str], timeout: float = 240) -> dict:
    """Run ``script`` in a peer's virtualenv with ``request`` as JSON on its standard input; its JSON answer."""
    done = subprocess.run([str(python), str(script)], input=json.dumps(request), capture_output=True, text=True,
                          env=env, timeout=timeout)
    assert done.returncode == 0, f"{script.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])
