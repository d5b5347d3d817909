"""What a runner VM installs: the project itself as a wheel built from this checkout, and its dependencies pinned to
the versions installed here (what the tests ran against), for a wheelhouse the VM installs from without an index.

Research clouds' VMs often have no egress, so nothing on the VM reaches a package index: the wheels travel with the
playbook. The project's wheel is cached by the content of its sources, so a changed checkout builds a new one.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import orchestrator
from orchestrator.errors import DataopsError

PROJECT = "dataops"
PROJECT_ROOT = Path(orchestrator.__file__).resolve().parents[1]
# What a build of the project reads: pyproject.toml names README.md as its readme; setuptools packs the package.
_BUILD_FILES = ("pyproject.toml", "README.md")


def runner_requirements(project: str = PROJECT) -> list[str]:
    """Every distribution the project needs at run time, transitively, as ``name==version`` with the versions
    installed here; the project itself is not among them. Extras a requirement asks for are followed.

    Args:
        project: The distribution whose requirements are pinned.

    Returns:
        Sorted pinned requirements.

    Raises:
        DataopsError: A required distribution is not installed here (the pins would be guesses).
    """
    pins: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    pending: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if key in extras_seen and extras <= extras_seen[key]:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise DataopsError(f"{name} is required by {project} but not installed here: install {project} with its "
                               "dependencies first (the runner gets the versions installed here)") from None
        extras_seen[key] = extras_seen.get(key, set()) | extras
        if key != canonicalize_name(project):
            pins[key] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in (extras or {""})]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return sorted(pins.values(), key=str.lower)


def source_digest(root: Path = PROJECT_ROOT) -> str:
    """A digest of everything a build of the project reads (its package and build files), to cache its wheel."""
    digest = hashlib.sha256()
    files = [root / name for name in _BUILD_FILES]
    files += sorted(p for p in (root / "orchestrator").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_project_wheel(cache: Path, root: Path = PROJECT_ROOT) -> Path:
    """The project's wheel, built from ``root`` (a copy of it: the checkout is left untouched) or reused from
    ``cache`` when its sources have not changed.

    Args:
        cache: Folder of built wheels, one sub-folder per source digest.
        root: The project's checkout (the folder holding pyproject.toml).

    Returns:
        The wheel's path.

    Raises:
        DataopsError: There is no checkout to build from, or pip could not build it (its last lines named).
    """
    if not (root / "pyproject.toml").is_file():
        raise DataopsError(f"no project checkout at {root} to build the runner's wheel from (pyproject.toml missing)")
    folder = cache / source_digest(root)
    built = sorted(folder.glob(f"{PROJECT}-{orchestrator.__version__}-*.whl"))
    if built:
        return built[0]
    with tempfile.TemporaryDirectory(prefix="dataops-project-wheel-") as tmp:
        source = Path(tmp) / "source"
        source.mkdir()
        for name in _BUILD_FILES:
            shutil.copy(root / name, source / name)
        shutil.copytree(root / "orchestrator", source / "orchestrator",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        staging = Path(tmp) / "wheel"
        result = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(staging), str(source)],
            capture_output=True, text=True,
        )
        if result.returncode != 0:
            tail = "\n".join(result.stderr.strip().splitlines()[-5:])
            raise DataopsError(f"could not build the {PROJECT} wheel from {root}:\n{tail}")
        (wheel,) = staging.glob(f"{PROJECT}-{orchestrator.__version__}-*.whl")
        folder.mkdir(parents=True, exist_ok=True)
        # A rename within one file system: a concurrent build sees the whole wheel or none.
        partial = folder / f".{wheel.name}.partial"
        shutil.copy(wheel, partial)
        partial.replace(folder / wheel.name)
    return folder / wheel.name


def requirements_digest(requirements: list[str], python_version: str) -> str:
    """A digest naming a wheelhouse of ``requirements`` for ``python_version`` (its cache folder's name)."""
    return hashlib.sha256("\n".join([python_version, *requirements]).encode()).hexdigest()[:16]
