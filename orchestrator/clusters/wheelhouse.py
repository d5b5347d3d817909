"""The Python environment of cluster nodes: pins taken from the operator's own environment, and a wheelhouse
built on the operator's machine for clouds whose nodes cannot reach a package index."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

from orchestrator.atomic import atomic_file
from orchestrator.errors import DataopsError

# Packages whose versions must match between the client and the cluster for Dask to talk to it.
NODE_PACKAGES = ("dask", "distributed")
# What a pipeline's tasks import on the nodes (the scheduler too: it unpickles the task graph). The project's own
# code is not installed: the client ships it with every run, so the cluster always runs the client's version.
# orjson: scoring keeps the inference server's input contract, whose codecs parse with it.
PIPELINE_PACKAGES = ("pandas", "numpy", "pyarrow", "scikit-learn", "scipy", "joblib", "onnxruntime", "pydantic",
                     "pyyaml", "cloudpickle", "fsspec", "aiohttp", "orjson")


def pinned_requirements(packages: tuple[str, ...] = NODE_PACKAGES + PIPELINE_PACKAGES) -> list[str]:
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


def pack_wheelhouse(directory: Path, archives: Path | None = None) -> Path:
    """One uncompressed tar of the wheelhouse, named by its content, for the nodes to unpack.

    Ansible copies a folder file by file, checksumming each on both sides (over a minute for 150 MB of wheels on
    three nodes); one archive goes in seconds. The archive also holds a marker file named like it, which tells a
    node that has it already.

    Args:
        directory: The wheelhouse.
        archives: Where archives are kept (default: the system's temporary directory); an existing one is reused.

    Returns:
        The archive's path.
    """
    wheels = sorted(p for p in Path(directory).iterdir() if p.suffix == ".whl")
    # Wheel names carry name and version; with the size they identify the content without reading it.
    digest = hashlib.sha256("".join(f"{w.name}:{w.stat().st_size}\n" for w in wheels).encode()).hexdigest()[:16]
    name = f"dataops-wheelhouse-{digest}"
    folder = Path(archives or tempfile.gettempdir())
    archive = folder / f"{name}.tar"
    if archive.is_file():
        return archive
    folder.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.NamedTemporaryFile("w", suffix=".marker") as marker,
        atomic_file(archive) as partial,
        tarfile.open(fileobj=partial, mode="w") as tar,
    ):
        tar.add(marker.name, arcname=f".{name}")
        for wheel in wheels:
            tar.add(wheel, arcname=wheel.name)
    return archive
