"""The models one server holds: several names, several versions each, loaded and unloaded without a restart.

Known model folders come from the command line and, optionally, a repository folder scanned on demand
(``<dir>/<name>/<version>/`` or ``<dir>/<name>/``). A model is ``READY`` only once its session is open.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.serving.card import CARD_FILE, read_card
from orchestrator.serving.errors import ModelLoadError, ModelNotFound
from orchestrator.serving.model import LoadedModel, load_model_folder
from orchestrator.serving.selfcheck import verify_card_examples

log = logging.getLogger("dataops.serving.repository")

READY, LOADING, UNAVAILABLE = "READY", "LOADING", "UNAVAILABLE"


@dataclass
class ModelState:
    state: str
    reason: str = ""


class ModelRepository:
    """Thread-safe registry of known and loaded models. Loading happens on worker threads, never on the loop."""

    def __init__(self, folders: list[Path], repository_dir: Path | None = None, device: str = "cpu",
                 intra_op_threads: int = 1):
        self.repository_dir = Path(repository_dir) if repository_dir else None
        self.device = device
        self.intra_op_threads = intra_op_threads
        self._known: dict[str, dict[int, Path]] = {}
        self._loaded: dict[str, dict[int, LoadedModel]] = {}
        self._states: dict[str, ModelState] = {}
        self._lock = threading.Lock()
        for folder in folders:
            self._remember(Path(folder))
        self._scan()

    def _remember(self, folder: Path) -> None:
        card = read_card(folder)
        self._known.setdefault(card.name, {})[card.version] = folder.resolve()
        self._states.setdefault(card.name, ModelState(UNAVAILABLE, "not loaded yet"))

    def _scan(self) -> None:
        if self.repository_dir is None:
            return
        # A version whose folder left the repository is forgotten: removing a folder and loading again is how
        # a deployment rolls a model back.
        root = self.repository_dir.resolve()
        for versions in self._known.values():
            for version, folder in list(versions.items()):
                if folder.is_relative_to(root) and not (folder / CARD_FILE).is_file():
                    del versions[version]
        if not self.repository_dir.is_dir():
            return
        for card_path in sorted(self.repository_dir.glob(f"*/{CARD_FILE}")) + sorted(
                self.repository_dir.glob(f"*/*/{CARD_FILE}")):
            try:
                self._remember(card_path.parent)
            except ModelLoadError as exc:
                log.warning("skipping %s: %s", card_path.parent, exc)

    @property
    def names(self) -> list[str]:
        return sorted(self._known)

    def load(self, name: str) -> list[LoadedModel]:
        """Load (or reload) every known version of ``name``. Blocking: call it from a worker thread.

        Raises:
            ModelNotFound: no folder is known for ``name``.
            ModelLoadError: a version cannot be loaded; the previous versions stay served.
        """
        with self._lock:
            self._scan()
            if not self._known.get(name):
                raise ModelNotFound(f"unknown model {name!r}: known models are {self.names}")
            folders = dict(self._known[name])
            self._states[name] = ModelState(LOADING)
        try:
            loaded = {version: load_model_folder(folder, self.device, self.intra_op_threads)
                      for version, folder in folders.items()}
            for model in loaded.values():
                verify_card_examples(model)
        except ModelLoadError as exc:
            with self._lock:
                previous = self._loaded.get(name)
                self._states[name] = ModelState(READY if previous else UNAVAILABLE, str(exc))
            raise
        with self._lock:
            self._loaded[name] = loaded
            self._states[name] = ModelState(READY)
        log.info("loaded model %s versions %s", name, sorted(loaded))
        return list(loaded.values())

    def unload(self, name: str) -> None:
        """Stop serving ``name``; its folders stay known so it can be loaded again.

        Raises:
            ModelNotFound: the name is not known.
        """
        with self._lock:
            if name not in self._known:
                raise ModelNotFound(f"unknown model {name!r}: known models are {self.names}")
            self._loaded.pop(name, None)
            self._states[name] = ModelState(UNAVAILABLE, "unloaded")
        log.info("unloaded model %s", name)

    def get(self, name: str, version: str | None = None) -> LoadedModel:
        """The loaded model ``name`` at ``version`` (the highest loaded version when None).

        Raises:
            ModelNotFound: unknown name, not loaded, or no such version.
        """
        versions = self._loaded.get(name)
        if not versions:
            if name in self._known:
                state = self._states[name]
                raise ModelNotFound(f"model {name!r} is not ready ({state.state.lower()}"
                                    f"{': ' + state.reason if state.reason else ''})")
            raise ModelNotFound(f"unknown model {name!r}: served models are {self.names}")
        if version is None:
            return versions[max(versions)]
        try:
            return versions[int(version)]
        except (ValueError, KeyError):
            raise ModelNotFound(f"model {name!r} has no loaded version {version!r}: "
                                f"versions are {sorted(versions)}") from None

    def is_ready(self, name: str, version: str | None = None) -> bool:
        try:
            self.get(name, version)
        except ModelNotFound:
            return False
        return True

    def all_ready(self) -> bool:
        return all(self._states[name].state == READY for name in self._known) and bool(self._known)

    def index(self) -> list[dict]:
        """The repository index: every known model version with its state."""
        rows = []
        for name in self.names:
            state = self._states[name]
            loaded = self._loaded.get(name, {})
            for version in sorted(self._known[name]):
                rows.append({"name": name, "version": str(version),
                             "state": READY if version in loaded else (
                                 LOADING if state.state == LOADING else UNAVAILABLE),
                             "reason": "" if version in loaded else state.reason})
        return rows


def place_folder(folder: Path, fill: Callable[[Path], None]) -> None:
    """Make ``folder`` whole or not at all: ``fill`` writes a staging folder beside it, which then replaces it in one
    rename, so that a server scanning its repository meanwhile never sees half a model. Everything in it is made
    readable by all: the server may run as another user."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        fill(staging)
        for path in staging.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        os.chmod(staging, 0o755)
        shutil.rmtree(folder, ignore_errors=True)
        os.rename(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
