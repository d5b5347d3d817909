"""The batch scoring use case: read a dataset lazily, score it with a registered model, write predictions.

The output is a Parquet folder, published by renaming a finished temporary folder, holding ``_prediction.json``:
the model's name, version and sha256, the input's location and fingerprint, and the row count.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import urlparse

from orchestrator.artifacts.store import ArtifactStore, sha256_of_file
from orchestrator.errors import DataopsError, SourceError
from orchestrator.ml.score import load_card, score_dataframe
from orchestrator.registry.models import resolve_model_ref

RECORD = "_prediction.json"


def _local_path(location: str) -> Path | None:
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return Path(parsed.path if parsed.scheme else location)
    return None


def _input_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in (".parquet", ".csv"))
        if not files:
            raise SourceError(f"{path} holds no .parquet or .csv files")
        return files
    if not path.is_file():
        raise SourceError(f"input {path} does not exist")
    return [path]


def input_fingerprint(location: str) -> str:
    """sha256 over every input file's relative name and sha256 (local inputs); the URL itself otherwise."""
    path = _local_path(location)
    if path is None:
        return "url:" + hashlib.sha256(location.encode()).hexdigest()
    digest = hashlib.sha256()
    base = path if path.is_dir() else path.parent
    for file in _input_files(path):
        digest.update(f"{file.relative_to(base).as_posix()}\0{sha256_of_file(file)}\n".encode())
    return digest.hexdigest()


def read_dataset(location: str):
    """A lazy Dask DataFrame over a Parquet or CSV file or folder (local path or fsspec URL).

    Raises:
        SourceError: missing input, unknown format or unreadable URL.
    """
    import dask.dataframe as dd

    path = _local_path(location)
    if path is not None:
        files = _input_files(path)
        kinds = {f.suffix for f in files}
        if len(kinds) > 1:
            raise SourceError(f"{location} mixes Parquet and CSV files")
        target = [str(f) for f in files]
        kind = kinds.pop()
    else:
        target = location
        kind = ".csv" if location.rstrip("/").endswith(".csv") else ".parquet"
    try:
        return dd.read_csv(target, dtype_backend="pyarrow") if kind == ".csv" else dd.read_parquet(target)
    except (OSError, ValueError, ImportError) as exc:
        raise SourceError(f"cannot read {location}: {exc}") from exc


def predict_to_path(store: ArtifactStore, ref: str, input_location: str, output: Path, client=None) -> dict:
    """Score ``input_location`` with model ``ref`` and write Parquet predictions to ``output``.

    Returns:
        The prediction record (also written as ``_prediction.json`` in the output folder).

    Raises:
        ArtifactNotFound: unknown model reference.
        SchemaMismatch: the input lacks a model input column or has the wrong type.
        SourceError: the input cannot be read.
        DataopsError: the output exists.
    """
    import dask

    output = Path(output)
    if output.exists():
        raise DataopsError(f"output {output} already exists; predictions are never overwritten")
    model_dir = resolve_model_ref(store, ref)
    card = load_card(model_dir)
    ddf = read_dataset(input_location)
    scored = score_dataframe(model_dir, ddf)
    staging = output.with_name(f".{output.name}.{uuid.uuid4().hex}")
    try:
        write = scored.to_parquet(str(staging), write_index=False, compute=False)
        rows = scored.map_partitions(len).sum()
        compute = client.compute if client is not None else None
        if compute is not None:
            _, total = client.gather(compute([write, rows]))
        else:
            _, total = dask.compute(write, rows)
        record = {
            "model": {"name": card["name"], "version": card.get("version"),
                      "sha256": card["files"]["model.onnx"]["sha256"]},
            "input": {"location": input_location, "fingerprint": input_fingerprint(input_location)},
            "rows": int(total),
            "columns_added": [c for c in scored.columns if c not in ddf.columns],
            "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        (staging / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))
        output.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record
