"""The default artifact store: a folder on the local disk (``./.dataops``)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

from orchestrator.artifacts.store import (
    CHUNK,
    MANIFEST,
    ArtifactInfo,
    build_manifest,
    manifest_digest,
    sha256_of_file,
)
from orchestrator.artifacts.disk_space import disk_space_checked
from orchestrator.atomic import atomic_file, write_atomically
from orchestrator.errors import ArtifactError, ArtifactNotFound

STAGING = ".staging"


def _disk_space_checked(method):
    """A write of the store meeting a full disk raises ``StoreFull`` naming the store's folder and the key."""

    @functools.wraps(method)
    def checked(self, *args, **kwargs):
        writing = f"artifact {args[0]!r}" if args else "a stage's scratch folder"
        with disk_space_checked(self.root, writing):
            return method(self, *args, **kwargs)

    return checked


class LocalStore:
    """Artifacts as files under ``root``; every write goes to ``root/.staging`` first, then one rename."""

    def __init__(self, root: Path | str):
        self.root = Path(root).expanduser().resolve()
        self.uri = f"file://{self.root}"
        (self.root / STAGING).mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    def _path(self, key: str) -> Path:
        key = key.strip("/")
        if not key or ".." in Path(key).parts or key.startswith(STAGING):
            raise ArtifactError(f"invalid artifact key {key!r}")
        return self.root / key

    @_disk_space_checked
    def scratch_dir(self) -> Path:
        path = self.root / STAGING / uuid.uuid4().hex
        path.mkdir(parents=True)
        return path

    def url_signer(self) -> None:
        # A folder on this machine: nothing elsewhere can be granted a URL to it.
        return None

    def _publish(self, tmp: Path, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)

    @_disk_space_checked
    def put_bytes(self, key: str, data: bytes) -> ArtifactInfo:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Staged outside the key's folder, so that a listing never shows a file being written.
        write_atomically(dest, data, temp_dir=self.root / STAGING)
        return ArtifactInfo(key, hashlib.sha256(data).hexdigest(), len(data))

    @_disk_space_checked
    def put_if_absent(self, key: str, data: bytes) -> bool:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staged = self.root / STAGING / f"{uuid.uuid4().hex}.create"
        write_atomically(staged, data)
        try:
            # link() fails when the name exists, and publishes a complete file when it does not: one atomic step.
            os.link(staged, dest)
        except FileExistsError:
            return False
        finally:
            staged.unlink(missing_ok=True)
        return True

    @_disk_space_checked
    def put_file(self, key: str, path: Path) -> ArtifactInfo:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        # Hash while copying: one pass over the file, and the digest is of exactly the bytes published.
        with atomic_file(dest, temp_dir=self.root / STAGING) as out, open(path, "rb") as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                digest.update(chunk)
                size += out.write(chunk)
        return ArtifactInfo(key, digest.hexdigest(), size)

    def get_bytes(self, key: str, sha256: str | None = None) -> bytes:
        path = self._path(key)
        if not path.is_file():
            raise ArtifactNotFound(f"no artifact {key!r} in {self.uri}")
        data = path.read_bytes()
        if sha256 is not None:
            actual = hashlib.sha256(data).hexdigest()
            if actual != sha256:
                raise ArtifactError(f"artifact {key!r} is corrupted: sha256 {actual}, expected {sha256}")
        return data

    def get_file(self, key: str, dest: Path, sha256: str | None = None) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise ArtifactNotFound(f"no artifact {key!r} in {self.uri}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        # Check the bytes as they are copied: a corrupted artifact never replaces what ``dest`` held.
        with atomic_file(dest) as out, open(path, "rb") as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                digest.update(chunk)
                out.write(chunk)
            if sha256 is not None and (actual := digest.hexdigest()) != sha256:
                raise ArtifactError(f"artifact {key!r} is corrupted: sha256 {actual}, expected {sha256}")
        return dest

    def exists(self, key: str) -> bool:
        path = self._path(key)
        return path.is_file() or (path / MANIFEST).is_file()

    def list(self, prefix: str = "") -> Iterator[str]:
        base = self.root / prefix.strip("/") if prefix.strip("/") else self.root
        if not base.exists():
            return iter(())
        keys = (
            p.relative_to(self.root).as_posix()
            for p in base.rglob("*")
            if p.is_file() and STAGING not in p.relative_to(self.root).parts
        )
        return iter(sorted(keys))

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            # Drop the manifest first so a half-deleted dataset is never mistaken for a complete one.
            (path / MANIFEST).unlink(missing_ok=True)
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    @_disk_space_checked
    def put_dataset(self, key: str, folder: Path) -> ArtifactInfo:
        dest = self._path(key)
        folder = Path(folder)
        manifest = build_manifest(folder)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        size = sum(f["size"] for f in manifest["files"].values())
        if folder.parent != self.root / STAGING:
            staged = self.scratch_dir()
            try:
                shutil.copytree(folder, staged, dirs_exist_ok=True)
            except BaseException:
                shutil.rmtree(staged, ignore_errors=True)  # a half copy would only keep a full disk full
                raise
            folder = staged
        if dest.exists():
            # Content-addressed keys: an existing complete dataset has the same content.
            if (dest / MANIFEST).is_file():
                shutil.rmtree(folder, ignore_errors=True)
                return ArtifactInfo(key, manifest_digest(manifest), size)
            shutil.rmtree(dest)
        self._publish(folder, dest)
        return ArtifactInfo(key, manifest_digest(manifest), size)

    def dataset_path(self, key: str, verify: bool = False) -> Path:
        path = self._path(key)
        manifest_file = path / MANIFEST
        if not manifest_file.is_file():
            raise ArtifactNotFound(f"no dataset {key!r} in {self.uri}")
        if verify:
            expected = json.loads(manifest_file.read_text())["files"]
            for rel, meta in expected.items():
                file = path / rel
                if not file.is_file() or sha256_of_file(file) != meta["sha256"]:
                    raise ArtifactError(f"dataset {key!r}: file {rel} is missing or corrupted")
        return path
