"""Reading sources into Dask DataFrames: local paths, http(s) URLs and artifact-store URLs, as CSV, Parquet or JSON lines."""

from __future__ import annotations

import glob
import hashlib
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import dask.dataframe as dd

from orchestrator.artifacts.store import CHUNK, ArtifactStore, sha256_of_file
from orchestrator.atomic import atomic_file, write_atomically
from orchestrator.errors import SourceError
from orchestrator.pipeline.spec import Source
from orchestrator.pipeline.web_api_snapshots import web_api_snapshot

# Big enough to keep per-task overhead small, small enough that two workers share the work.
BLOCKSIZE = "64MB"
# A Parquet partition's size in memory (row groups are never cut): about a million rows of a dozen columns, the
# size a file of the 10M-row benchmark holds, so that memory stays the same when the files grow tenfold.
PARQUET_BLOCKSIZE = "32MB"
COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_TYPED_READ = {"int": "string", "float": "string", "bool": "string", "datetime": "string", "string": "string"}


def resolve_files(source: Source, base_dir: Path, store: ArtifactStore, name: str | None = None) -> list[Path]:
    """Local files holding the source's data, downloading remote ones into the store's download cache; a
    ``web_api`` source's is its snapshot (``orchestrator.pipeline.web_api_snapshots``), fetched when due.

    Args:
        source: the source's spec.
        base_dir: the pipeline file's folder, which relative paths start from.
        store: the artifact store (its download cache, and a web API's snapshots).
        name: the source's name, for messages.

    Raises:
        SourceError: nothing at the location, or the download or the fetch failed.
    """
    if source.web_api is not None:
        return [web_api_snapshot(source.web_api, name or source.web_api.url, base_dir, store,
                                 local_folder(store, "web_api"))]
    parsed = urlparse(source.location)
    if parsed.scheme in ("http", "https"):
        return [_download(source.location, store)]
    if parsed.scheme == "swift":
        from orchestrator.artifacts.open import open_store

        key = parsed.path.lstrip("/")
        remote = open_store(f"swift://{parsed.netloc}")
        dest = local_folder(store, "downloads") / f"{_url_digest(source.location)}-{Path(key).name}"
        return [remote.get_file(key, dest)]
    raw = parsed.path if parsed.scheme == "file" else source.location
    path = Path(raw) if Path(raw).is_absolute() else base_dir / raw
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(("_", ".")))
    else:
        files = sorted(Path(p) for p in glob.glob(str(path)))
    if not files:
        raise SourceError(f"source {source.location!r}: no file at {path}")
    return files


def local_folder(store: ArtifactStore, name: str) -> Path:
    """A folder ``name`` kept on this machine beside the store's staging area (downloads, memoised hashes).

    Only the staging area's place is wanted: the scratch folder asked for to find it is removed at once, so that
    runs leave no empty folders in it.
    """
    scratch = store.scratch_dir()
    scratch.rmdir()
    folder = scratch.parent / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _url_digest(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _download(url: str, store: ArtifactStore) -> Path:
    """Stream an http(s) file to local disk once; later runs reuse it when the server's validators match."""
    folder = local_folder(store, "downloads")
    name = _url_digest(url) + "-" + (Path(urlparse(url).path).name or "data")
    dest = folder / name
    if dest.exists():
        return dest
    try:
        with urllib.request.urlopen(url, timeout=60) as response, atomic_file(dest) as out:
            shutil.copyfileobj(response, out, CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        raise SourceError(f"source {url!r}: download failed ({exc})") from exc
    return dest


def file_sha256s(files: list[Path], store: ArtifactStore) -> list[str]:
    """sha256 of each file's content, memoised by (path, size, mtime) so unchanged inputs are not re-read."""
    memo_dir = local_folder(store, "fingerprints")
    hashes = []
    for path in files:
        stat = path.stat()
        memo = memo_dir / hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
        if memo.exists():
            file_hash = memo.read_text()
        else:
            file_hash = sha256_of_file(path)
            write_atomically(memo, file_hash)  # a reader must never take a half-written hash
        hashes.append(file_hash)
    return hashes


def fingerprint_files(files: list[Path], sha256s: list[str]) -> str:
    """One sha256 over the files' names and contents."""
    digest = hashlib.sha256()
    for path, file_hash in zip(files, sha256s):
        digest.update(json.dumps([path.name, file_hash]).encode())
    return digest.hexdigest()


def read_source(source: Source, files: list[Path], locations: list[str] | None = None) -> dd.DataFrame:
    """A lazy Dask DataFrame over the source's files, read from ``locations`` (URLs of the same files) when given.

    Columns with a declared type are read as strings so that a malformed value becomes a quarantined row with a reason,
    instead of a failed read.
    """
    fmt = source.resolved_format
    options = dict(source.read_options)
    typed = {
        name: _TYPED_READ[rule.type]
        for name, rule in (source.validation.columns.items() if source.validation else [])
        if rule.type
    }
    paths = locations or [str(p) for p in files]
    # A URL's query string hides the file's suffix: compression is told from the file's own name.
    compression = next((COMPRESSION[f.suffix] for f in files if f.suffix in COMPRESSION), None)
    try:
        if fmt == "csv":
            options.setdefault("blocksize", None if compression else BLOCKSIZE)
            if compression:
                options.setdefault("compression", compression)
            if source.columns:
                options.setdefault("usecols", source.columns)
            options["dtype"] = {**typed, **options.get("dtype", {})}
            options.setdefault("assume_missing", True)
            return dd.read_csv(paths, **options)
        if fmt == "parquet":
            # One partition per file would let a partition grow with its file (a month of 8M rows took 14 GB to
            # join): big files are cut at row groups into partitions of about PARQUET_BLOCKSIZE in memory.
            options.setdefault("split_row_groups", "adaptive")
            options.setdefault("blocksize", PARQUET_BLOCKSIZE)
            return dd.read_parquet(paths if len(paths) > 1 else paths[0], columns=source.columns, **options)
        options.setdefault("blocksize", None if compression else 2**26)
        if compression:
            options.setdefault("compression", compression)
        frame = dd.read_json(paths, lines=True, dtype=False, **options)
        return frame[source.columns] if source.columns else frame
    except (ValueError, OSError, KeyError) as exc:
        raise SourceError(f"source {source.origin!r}: cannot read as {fmt}: {exc}") from exc
