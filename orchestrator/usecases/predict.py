"""Batch scoring: read a dataset lazily, score it with a registered model, write predictions.

The output is a Parquet folder, published by renaming a finished temporary folder, holding ``_prediction.json``:
the model's name, version and sha256, the input's location and fingerprint, and the row count. The input is read
by the pipeline's own source reader, so batch scoring takes what a pipeline source takes (CSV, Parquet, JSON
lines; a file, a folder, a glob or a URL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import uuid
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import urlparse

from orchestrator.artifacts.open import open_store
from orchestrator.artifacts.store import ArtifactStore, sha256_of_file
from orchestrator.config import setting
from orchestrator.errors import DataopsError, SourceError
from orchestrator.ml.score import load_card, score_dataframe
from orchestrator.pipeline import sources
from orchestrator.pipeline.spec import Source
from orchestrator.registry.models import resolve_model_ref
from orchestrator.usecases.compute import compute_target, open_client

RECORD = "_prediction.json"
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl"}


def input_source(location: str, store: ArtifactStore) -> tuple[Source, list[Path]]:
    """The input as a pipeline source, and its local files (none for a URL read in place)."""
    parsed = urlparse(location)
    if parsed.scheme not in ("", "file"):
        return Source(location=location, format="csv" if location.rstrip("/").endswith(".csv") else None), []
    path = Path(parsed.path if parsed.scheme else location)
    if not path.exists() and not any(char in str(path) for char in "*?["):
        raise SourceError(f"input {path} does not exist")
    files = [f for f in sources.resolve_files(Source(location=str(path), format="parquet"), Path.cwd(), store)
             if f.suffix in _FORMATS]
    kinds = {_FORMATS[f.suffix] for f in files}
    if not kinds:
        raise SourceError(f"{path} holds no .parquet, .csv or JSON lines files")
    if len(kinds) > 1:
        raise SourceError(f"{location} mixes {' and '.join(sorted(kinds))} files")
    return Source(location=str(path), format=kinds.pop()), files


def input_fingerprint(location: str, files: list[Path]) -> str:
    """sha256 over every input file's relative name and sha256 (local inputs); the URL itself otherwise."""
    if not files:
        return "url:" + hashlib.sha256(location.encode()).hexdigest()
    path = Path(urlparse(location).path if location.startswith("file:") else location)
    base = path if path.is_dir() else path.parent
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.relative_to(base).as_posix()}\0{sha256_of_file(file)}\n".encode())
    return digest.hexdigest()


def predict_to_path(store: ArtifactStore, ref: str, input_location: str, output: Path, client=None) -> dict:
    """Score ``input_location`` with model ``ref`` and write Parquet predictions to ``output``.

    Args:
        store: the store holding the registry.
        ref: ``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``.
        input_location: a file, folder, glob or URL.
        output: the Parquet folder to create.
        client: a Dask client; None computes with threads in this process.

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
    source, files = input_source(input_location, store)
    ddf = sources.read_source(source, files, None if files else [input_location])
    scored = score_dataframe(model_dir, ddf)
    staging = output.with_name(f".{output.name}.{uuid.uuid4().hex}")
    try:
        write = scored.to_parquet(str(staging), write_index=False, compute=False)
        rows = scored.map_partitions(len).sum()
        if client is not None:
            _, total = client.gather(client.compute([write, rows]))
        else:
            _, total = dask.compute(write, rows)
        record = {
            "model": {"name": card["name"], "version": card.get("version"),
                      "sha256": card["files"]["model.onnx"]["sha256"]},
            "input": {"location": input_location, "fingerprint": input_fingerprint(input_location, files)},
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


def predict_batch(ref: str, input_location: str, output: Path, store: str | None = None,
                  scheduler: str | None = None) -> dict:
    """``dataops predict``: score on the configured scheduler (over TLS and with this machine's code when it is
    remote), or with threads in this process when none is configured."""
    target = compute_target(scheduler, None)
    with open_client(target) if target.address else nullcontext() as client:
        return predict_to_path(open_store(setting("store", store)), ref, input_location, output, client=client)
