"""Where Dask workers read and write a stage's data.

* ``FolderData`` (a local store): the workers share this machine's disk, so a stage reads its inputs' folders in
  place and writes Parquet into its scratch folder.
* ``ObjectStoreData`` (Swift): the workers may be anywhere, on a cluster in the cloud among others. They read every
  file through a short-lived TempURL and write each partition straight to the stage's place in the store, so the
  data never passes through this machine and the workers hold no credentials. Publishing still writes the manifest
  last: until then, what the workers wrote is not an artifact.

Both give the same partitions (one file per Dask partition) and the same rows, so a run's fingerprints do not depend
on where it ran.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Iterator, Protocol

import dask
import dask.dataframe as dd
import fsspec
import pandas as pd
import pyarrow.parquet as pq
from fsspec.implementations.http import HTTPFileSystem

from orchestrator.artifacts.object_client import ObjectClient, SignedURLTransport, signed_read_session_options
from orchestrator.artifacts.store import MANIFEST, ArtifactInfo, ArtifactStore, URLSigner
from orchestrator.errors import ArtifactError

# Long enough for the slowest stage; a leaked URL grants nothing once it has expired.
URL_SECONDS = 6 * 3600
_WRITTEN = pd.DataFrame({"rel": pd.Series(dtype=object), "size": pd.Series(dtype="int64"),
                         "sha256": pd.Series(dtype=object), "rows": pd.Series(dtype="int64")})


class SignedURLFileSystem(HTTPFileSystem):
    """fsspec's HTTP filesystem for TempURLs, minus a keyword (``default_cache``) that dask's Parquet reader passes
    to ``open`` and fsspec 2026.9 forwards to aiohttp, which refuses it; its reads follow the object client's retry
    policy (fsspec itself retries nothing)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("client_kwargs", signed_read_session_options())
        super().__init__(*args, **kwargs)

    def _open(self, path, mode="rb", *args, **kwargs):
        kwargs.pop("default_cache", None)
        return super()._open(path, mode, *args, **kwargs)


# Dask's CSV and JSON readers find the filesystem by the URL's protocol.
fsspec.register_implementation("http", SignedURLFileSystem, clobber=True)


def parquet_rows(folder: Path) -> int:
    """Row count of a Parquet folder, read from the footers only."""
    return sum(pq.read_metadata(path).num_rows for path in sorted(folder.glob("*.parquet")))


class StageData(Protocol):
    """One running stage's reads and writes."""

    def read(self, location: str, part: str) -> dd.DataFrame:
        """The Parquet folder ``part`` of the published dataset at ``location``, lazily."""

    def save(self, frames: dict[str, dd.DataFrame], *also) -> tuple:
        """Write each frame as the folder named by its key, computing ``also`` in the same pass; return ``also``."""

    def rows(self, part: str) -> int:
        """Rows written to ``part`` by ``save``."""

    def source_paths(self, files: list[Path], sha256s: list[str]) -> list[str]:
        """Where the workers read a source's files."""

    def publish(self, location: str) -> ArtifactInfo:
        """Publish the stage's output (its scratch folder and everything saved) at ``location``."""

    def publish_part(self, part: str, key: str) -> ArtifactInfo:
        """Publish the folder ``part`` alone as a dataset at ``key`` (a failed validation's quarantine)."""


def stage_data(store: ArtifactStore, out_dir: Path, location: str) -> StageData:
    """Object-store URLs when the store can sign them, this machine's folders otherwise."""
    signer = store.url_signer()
    if signer is not None:
        return ObjectStoreData(store, signer, out_dir, location)
    return FolderData(store, out_dir)


class FolderData:
    def __init__(self, store: ArtifactStore, out_dir: Path):
        self.store = store
        self.out_dir = out_dir

    def read(self, location: str, part: str) -> dd.DataFrame:
        return dd.read_parquet(self.store.dataset_path(location) / part)

    def save(self, frames: dict[str, dd.DataFrame], *also) -> tuple:
        writes = [frame.to_parquet(self.out_dir / part, write_index=False, compute=False, write_metadata_file=False)
                  for part, frame in frames.items()]
        return dask.compute(*writes, *also)[len(writes):]

    def rows(self, part: str) -> int:
        return parquet_rows(self.out_dir / part)

    def source_paths(self, files: list[Path], sha256s: list[str]) -> list[str]:
        return [str(path) for path in files]

    def publish(self, location: str) -> ArtifactInfo:
        return self.store.put_dataset(location, self.out_dir)

    def publish_part(self, part: str, key: str) -> ArtifactInfo:
        return self.store.put_dataset(key, self.out_dir / part)


class ObjectStoreData:
    def __init__(self, store: ArtifactStore, signer: URLSigner, out_dir: Path, location: str):
        self.store = store
        self.signer = signer
        self.out_dir = out_dir
        self.location = location
        self._written: dict[str, dict] = {}
        self._rows: dict[str, int] = {}
        self._manifests: dict[str, dict] = {}

    def read(self, location: str, part: str) -> dd.DataFrame:
        # Stages read several parts of one dataset (train and validation of the split): one manifest fetch.
        if location not in self._manifests:
            self._manifests[location] = json.loads(self.store.get_bytes(f"{location}/{MANIFEST}"))
        manifest = self._manifests[location]
        names = sorted(
            (rel.removeprefix(f"{part}/") for rel in manifest["files"] if rel.startswith(f"{part}/")
             and rel.endswith(".parquet")),
            key=_part_number,
        )
        if not names:
            raise ArtifactError(f"dataset {location!r} has no Parquet files under {part}/")
        url = self.signer.temp_url(f"{location}/{part}", URL_SECONDS, prefix=True)
        # No hive partitioning: the query string's "name=value" pairs are not partition columns.
        return dd.read_parquet([_in_folder(url, name) for name in names], filesystem=SignedURLFileSystem(),
                               dataset={"partitioning": None})

    def save(self, frames: dict[str, dd.DataFrame], *also) -> tuple:
        writes = [
            frame.map_partitions(
                _put_partition, self.signer.temp_url(f"{self.location}/{part}", URL_SECONDS, "PUT", prefix=True),
                part, meta=_WRITTEN, enforce_metadata=False, align_dataframes=False,
            )
            for part, frame in frames.items()
        ]
        results = dask.compute(*writes, *also)
        for part, written in zip(frames, results[: len(writes)]):
            self._rows[part] = int(written["rows"].sum())
            for row in written.itertuples():
                self._written[row.rel] = {"size": int(row.size), "sha256": row.sha256}
        return results[len(writes):]

    def rows(self, part: str) -> int:
        return self._rows[part]

    def source_paths(self, files: list[Path], sha256s: list[str]) -> list[str]:
        """The files go to the store once per content, and are read from there.

        Readers list files in name order, which decides what lands in which partition: the names keep the local
        order so that partitions, and what a model trains on, are the same wherever the run happens.
        """
        folder = hashlib.sha256("".join(sha256s).encode()).hexdigest()
        urls = []
        for index, path in enumerate(files):
            key = f"sources/{folder}/{index:05d}-{path.name}"
            if not self.store.exists(key):
                self.store.put_file(key, path)
            urls.append(self.signer.temp_url(key, URL_SECONDS, check=False))
        return urls

    def publish(self, location: str) -> ArtifactInfo:
        return self.store.put_dataset(location, self.out_dir, written=self._written)

    def publish_part(self, part: str, key: str) -> ArtifactInfo:
        folder = self.out_dir / part
        for rel, meta in self._written.items():
            if rel.startswith(f"{part}/"):
                self.store.get_file(f"{self.location}/{rel}", self.out_dir / rel, sha256=meta["sha256"])
        return self.store.put_dataset(key, folder)


def _part_number(name: str) -> tuple[int, str]:
    stem = name.removesuffix(".parquet").rsplit(".", 1)[-1]
    return (int(stem), name) if stem.isdigit() else (-1, name)


def _in_folder(folder_url: str, name: str) -> str:
    """The URL of ``name`` inside the folder a prefix TempURL signs: same query, one more path segment."""
    path, query = folder_url.split("?", 1)
    return f"{path}/{name}?{query}"


def _put_partition(frame: pd.DataFrame, folder_url: str, part: str, partition_info=None) -> pd.DataFrame:
    """Runs on a worker: write one partition as Parquet and PUT it, checked by Swift against its MD5."""
    name = f"part.{partition_info['number'] if partition_info else 0}.parquet"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    sha256, size = ObjectClient(SignedURLTransport()).put_bytes(_in_folder(folder_url, name), buffer.getvalue())
    return pd.DataFrame({"rel": [f"{part}/{name}"], "size": [size], "sha256": [sha256], "rows": [len(frame)]})


class DatasetFolders(Mapping):
    """Upstream outputs as local folders, fetched from the store only when a stage opens one (a model file, say);
    data stages read through ``StageData`` instead and never download."""

    def __init__(self, store: ArtifactStore, locations: dict[str, str]):
        self._store = store
        self._locations = locations
        self._paths: dict[str, Path] = {}

    def __getitem__(self, name: str) -> Path:
        if name not in self._paths:
            self._paths[name] = self._store.dataset_path(self._locations[name])
        return self._paths[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._locations)

    def __len__(self) -> int:
        return len(self._locations)
