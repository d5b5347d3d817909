"""A scheduled pipeline's files, kept in the store with its schedule: the pipeline file and the Python modules and
packages beside it (what its ``module:function`` steps import). A runner that holds nothing but the store then runs
exactly what was scheduled, and editing the files on the operator's machine changes nothing until the schedule is
created again (``dataops schedule create``), as editing the schedule itself does.

Layout, under ``schedules/<name>/pipeline/``: ``manifest.json`` (the pipeline file's name, each file's sha256, and
a digest of them all) and ``files/<relative path>``. A runner writes them into a folder named by the digest, checked
against the manifest, and reuses that folder while the digest stays the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound, SpecError

# Code, not data: a bundle bigger than this holds something that belongs in a source (Swift, http).
MAX_BUNDLE_BYTES = 5 * 1024 * 1024
_SKIPPED_DIRS = {"__pycache__", "node_modules"}


@dataclass(frozen=True)
class Bundle:
    """A pipeline file and the modules beside it, by path relative to the pipeline's folder."""

    pipeline: str
    files: dict[str, bytes]

    @property
    def sha256s(self) -> dict[str, str]:
        return {path: hashlib.sha256(data).hexdigest() for path, data in sorted(self.files.items())}

    @property
    def digest(self) -> str:
        return _digest(self.pipeline, self.sha256s)


def _digest(pipeline: str, sha256s: dict[str, str]) -> str:
    text = pipeline + "\n" + "".join(f"{path} {sha}\n" for path, sha in sorted(sha256s.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def _modules_beside(folder: Path) -> list[Path]:
    """The top-level modules of ``folder`` and every module of its packages (folders with ``__init__.py``)."""
    found = sorted(folder.glob("*.py"))
    for package in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        if package.name.startswith(".") or package.name in _SKIPPED_DIRS:
            continue
        for path in sorted(package.rglob("*.py")):
            if not any(part.startswith(".") or part in _SKIPPED_DIRS for part in path.relative_to(folder).parts):
                found.append(path)
    return found


def collect_bundle(pipeline: Path) -> Bundle:
    """Read the pipeline file and the Python modules beside it.

    Raises:
        SpecError: The files together exceed :data:`MAX_BUNDLE_BYTES`.
    """
    pipeline = Path(pipeline).resolve()
    folder = pipeline.parent
    files = {pipeline.name: pipeline.read_bytes()}
    for path in _modules_beside(folder):
        files[path.relative_to(folder).as_posix()] = path.read_bytes()
    size = sum(len(data) for data in files.values())
    if size > MAX_BUNDLE_BYTES:
        largest = max(files, key=lambda name: len(files[name]))
        raise SpecError(f"{pipeline}: the pipeline file and the Python modules beside it hold {size} bytes, more "
                        f"than a schedule keeps ({MAX_BUNDLE_BYTES}); the largest is {largest}: keep data in a "
                        "source, not in the pipeline's folder")
    return Bundle(pipeline.name, files)


def _prefix(schedule: str) -> str:
    return f"schedules/{schedule}/pipeline"


def save_bundle(store: ArtifactStore, schedule: str, bundle: Bundle) -> str:
    """Keep ``bundle`` with ``schedule`` (replacing the one kept) and return its digest. The files go first and
    the manifest last: a runner reading meanwhile sees the old manifest, whose files it checks by sha256."""
    prefix = _prefix(schedule)
    for path, data in sorted(bundle.files.items()):
        store.put_bytes(f"{prefix}/files/{path}", data)
    manifest = {"pipeline": bundle.pipeline, "files": bundle.sha256s, "digest": bundle.digest}
    store.put_bytes(f"{prefix}/manifest.json", json.dumps(manifest, indent=1, sort_keys=True).encode())
    kept = set(bundle.files)
    for key in list(store.list(f"{prefix}/files/")):
        if key.removeprefix(f"{prefix}/files/") not in kept:
            store.delete(key)
    return bundle.digest


def bundle_manifest(store: ArtifactStore, schedule: str) -> dict | None:
    """The manifest of the schedule's kept pipeline, or None for a schedule that runs no pipeline."""
    try:
        return json.loads(store.get_bytes(f"{_prefix(schedule)}/manifest.json"))
    except ArtifactNotFound:
        return None


def same_files(pipeline: Path, manifest: dict) -> bool:
    """Whether ``pipeline`` and the modules beside it are exactly the kept ones (no download needed)."""
    try:
        return Path(pipeline).is_file() and collect_bundle(pipeline).digest == manifest["digest"]
    except (OSError, SpecError):
        return False


def materialize_bundle(store: ArtifactStore, schedule: str, manifest: dict, root: Path) -> Path:
    """Write the kept files under ``root/<schedule>-<digest>/`` (once per digest) and return the pipeline file.

    Every file is checked against the manifest's sha256; the folder appears whole or not at all.

    Raises:
        ArtifactNotFound: A file of the manifest is missing from the store.
        ArtifactError: A file does not match its sha256.
    """
    folder = Path(root) / f"{schedule}-{manifest['digest'][:16]}"
    if not folder.is_dir():
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{schedule}-", dir=root))
        try:
            for path, sha256 in manifest["files"].items():
                target = staging / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(store.get_bytes(f"{_prefix(schedule)}/files/{path}", sha256=sha256))
            os.rename(staging, folder)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            if not folder.is_dir():  # not a second runner that got there first
                raise
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return folder / manifest["pipeline"]
