"""The inference server as its own small distribution, for inference VMs: ``orchestrator.serving`` and nothing else
of the project, depending only on what the server imports (``orchestrator/serving/requirements.txt``)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

from orchestrator import __version__
from orchestrator.errors import DataopsError

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
SERVING = PACKAGE_ROOT / "serving"
DISTRIBUTION = "dataops-inference-server"

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "The dataops ONNX inference server (Open Inference Protocol), alone."
requires-python = ">=3.11"
dependencies = {dependencies}

# Every subpackage of the server (its codecs among them), found rather than listed so none is left out.
[tool.setuptools.packages.find]
include = ["orchestrator", "orchestrator.serving", "orchestrator.serving.*"]
"""


def server_requirements() -> list[str]:
    """The server's dependencies, pinned to the versions installed here (what the tests ran against)."""
    pinned = []
    for line in (SERVING / "requirements.txt").read_text().splitlines():
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        name = re.split(r"[<>=!;\s\[]", requirement, maxsplit=1)[0]
        marker = requirement.split(";", 1)[1].strip() if ";" in requirement else ""
        pinned.append(f"{name}=={version(name)}" + (f"; {marker}" if marker else ""))
    return pinned


def build_server_wheel(destination: Path) -> Path:
    """Build the ``dataops-inference-server`` wheel into ``destination`` and return its path.

    Raises:
        DataopsError: the wheel could not be built; the message carries pip's last lines.
    """
    destination.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dataops-server-wheel-") as tmp:
        source = Path(tmp)
        shutil.copytree(SERVING, source / "orchestrator" / "serving",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        shutil.copy(PACKAGE_ROOT / "__init__.py", source / "orchestrator" / "__init__.py")
        dependencies = json.dumps(server_requirements())  # a JSON list of strings is a valid TOML array
        (source / "pyproject.toml").write_text(
            _PYPROJECT.format(name=DISTRIBUTION, version=__version__, dependencies=dependencies))
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(destination), str(source)],
            capture_output=True, text=True,
        )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-5:])
        raise DataopsError(f"could not build the {DISTRIBUTION} wheel:\n{tail}")
    (wheel,) = destination.glob(f"{DISTRIBUTION.replace('-', '_')}-{__version__}-*.whl")
    return wheel


def server_wheelhouse(destination: Path, gpu: bool = False) -> tuple[Path, list[str]]:
    """A wheelhouse holding the server's wheel and its pinned dependencies, and the requirements to install.

    Args:
        destination: the wheelhouse directory (wheels already there are reused).
        gpu: nodes with a GPU get onnxruntime-gpu (same version), which brings the CUDA execution provider.

    Returns:
        (the wheelhouse directory, the pinned requirement strings an inference node installs).
    """
    from orchestrator.clusters.wheelhouse import build_wheelhouse

    requirements = server_requirements()
    if gpu:
        requirements = [r.replace("onnxruntime==", "onnxruntime-gpu==") for r in requirements]
    build_wheelhouse(requirements, destination)
    build_server_wheel(destination)
    return destination, [f"{DISTRIBUTION}=={__version__}", *requirements]
