"""The Python environment of cluster nodes: pins taken from the operator's own environment, and a wheelhouse
built on the operator's machine for clouds whose nodes cannot reach a package index."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from orchestrator.errors import DataopsError

# Packages whose versions must match between the client and the cluster for Dask to talk to it.
NODE_PACKAGES = ("dask", "distributed")


def pinned_requirements(packages: tuple[str, ...] = NODE_PACKAGES) -> list[str]:
    """Return ``name==version`` for each package, with the version installed here.

    Args:
        packages: Distribution names to pin.

    Returns:
        The pinned requirement strings, in the given order.
    """
    return [f"{name}=={version(name)}" for name in packages]


def build_wheelhouse(requirements: list[str], destination: Path, python_version: str = "3.11") -> Path:
    """Download binary wheels of ``requirements`` and their dependencies into ``destination``.

    Args:
        requirements: Pinned requirement strings.
        destination: Directory to fill (created if missing); wheels already there are reused by pip.
        python_version: Python version of the nodes' interpreter.

    Returns:
        The destination directory.

    Raises:
        DataopsError: pip could not download the wheels; the message carries pip's last lines.
    """
    destination.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:",
        "--python-version", python_version, "--dest", str(destination), *requirements,
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise DataopsError(f"could not build the wheelhouse for {', '.join(requirements)}:\n{tail}")
    return destination
