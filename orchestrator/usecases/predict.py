"""Batch scoring: read a dataset lazily, score it with a registered model, write predictions.

The output is a Parquet folder, published by renaming a finished temporary folder, holding ``_prediction.json``:
the model's name, version and sha256, the input's location and fingerprint, the row counts and the commonest
refusals. The input is read by the pipeline's own source reader, so batch scoring takes what a pipeline source
takes (CSV, Parquet, JSON lines; a file, a folder, a glob or a URL).

Every row keeps the inference server's input contract under the same range policy (``ml.input_contract``): a
row the server would refuse is written with the server's message in ``refused`` and no prediction. With a
pipeline (``--raw``), the input is new rows of the pipeline's base source, prepared as a run prepares its own
(``pipeline.prepare``); rows breaking the source's rules are kept, with the reason, in ``_quarantine/`` (which
Parquet readers skip).
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

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.open import open_store
from orchestrator.artifacts.store import ArtifactStore, sha256_of_file
from orchestrator.config import setting
from orchestrator.errors import ArtifactNotFound, DataopsError, SourceError
from orchestrator.ml.input_contract import FLAG, RANGE_POLICIES, REJECT
from orchestrator.ml.score import OUT_OF_RANGE, REFUSED, load_card, score_dataframe
from orchestrator.pipeline import sources
from orchestrator.pipeline.prepare import base_source, prepare_rows, read_like_source
from orchestrator.pipeline.spec import LoadedPipeline, Source, load_pipeline
from orchestrator.registry.models import resolve_model_ref
from orchestrator.usecases.compute import compute_target, open_client

RECORD = "_prediction.json"
QUARANTINE = "_quarantine"
REFUSALS_KEPT = 5  # the commonest refusal messages the record keeps, with their counts
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


def typed_empty_columns(frame, files: list[Path], card: dict):
    """Give the columns a Parquet file holds no value in a type: float for a numeric model input, else text.

    Parquet keeps such a column as the null type, which pandas reads as objects that can be neither scored nor
    written back; CSV and JSON lines readers already type them (float, text).
    """
    if not files or files[0].suffix != ".parquet":
        return frame
    import pyarrow as pa
    import pyarrow.parquet as pq

    numeric = {item["name"] for item in card["inputs"] if item["datatype"] == "FP32"}
    schema = pq.read_schema(files[0])
    empty = [field.name for field in schema if pa.types.is_null(field.type) and field.name in frame.columns]
    return frame.astype({name: "float64" if name in numeric else "string" for name in empty}) if empty else frame


def predict_to_path(store: ArtifactStore, ref: str, input_location: str, output: Path, client=None,
                    range_policy: str = REJECT, raw: bool = False, pipeline_file: str | None = None) -> dict:
    """Score ``input_location`` with model ``ref`` and write Parquet predictions to ``output``.

    Args:
        store: the store holding the registry.
        ref: ``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``.
        input_location: a file, folder, glob or URL.
        output: the Parquet folder to create.
        client: a Dask client; None computes with threads in this process.
        range_policy: the server's policy for a value outside the training range: "reject" or "flag".
        raw: the input is new rows of the pipeline's base source, to prepare first (``model_pipeline``); else it
            holds the model's features.
        pipeline_file: with ``raw``, the pipeline file to prepare them with (default: the one that trained it).

    Returns:
        The prediction record (also written as ``_prediction.json`` in the output folder).

    Raises:
        ArtifactNotFound: unknown model reference.
        SchemaMismatch: the input lacks a model input column or has the wrong type.
        SourceError: the input cannot be read.
        DataopsError: the output exists, or the range policy is unknown.
    """
    import dask

    if range_policy not in RANGE_POLICIES:
        raise DataopsError(f"range policy must be one of {', '.join(RANGE_POLICIES)}, got {range_policy!r}")
    output = Path(output)
    if output.exists():
        raise DataopsError(f"output {output} already exists; predictions are never overwritten")
    model_dir = resolve_model_ref(store, ref)
    card = load_card(model_dir)
    pipeline = model_pipeline(store, card, pipeline_file) if raw else None
    source, files = input_source(input_location, store)
    locations = None if files else [input_location]
    quarantine = blended = None
    if pipeline is not None:
        base = pipeline.spec.sources[base_source(pipeline)]
        raw = typed_empty_columns(read_like_source(base, files, locations, source.resolved_format), files, card)
        prepared = prepare_rows(pipeline, raw, store)
        rows, quarantine, blended = prepared.features, prepared.quarantine, prepared.blended
    else:
        rows = typed_empty_columns(sources.read_source(source, files, locations), files, card)
    scored = score_dataframe(model_dir, rows, range_policy)
    staging = output.with_name(f".{output.name}.{uuid.uuid4().hex}")
    tasks = {
        "write": scored.to_parquet(str(staging), write_index=False, compute=False),
        "rows": scored.map_partitions(len).sum(),
        "refusals": scored[REFUSED].value_counts(),
    }
    if range_policy == FLAG:
        tasks["flagged"] = scored[OUT_OF_RANGE].notnull().sum()
    if quarantine is not None:
        tasks["quarantine"] = quarantine.to_parquet(str(staging / QUARANTINE), write_index=False, compute=False)
        tasks["quarantined"] = quarantine.map_partitions(len).sum()
    if blended is not None:
        tasks["joins"] = blended.counts
    try:
        names = list(tasks)
        if client is not None:
            computed = client.gather(client.compute(list(tasks.values())))
        else:
            computed = dask.compute(*tasks.values())
        done = dict(zip(names, computed))
        refusals = done["refusals"].sort_values(ascending=False, kind="stable")
        record = {
            "model": {"name": card["name"], "version": card.get("version"),
                      "sha256": card["files"]["model.onnx"]["sha256"]},
            "input": {"location": input_location, "fingerprint": input_fingerprint(input_location, files)},
            "range_policy": range_policy,
            "rows": int(done["rows"]),
            "scored": int(done["rows"]) - int(refusals.sum()),
            "refused": int(refusals.sum()),
            "refusals": [{"message": message, "rows": int(count)}
                         for message, count in refusals.head(REFUSALS_KEPT).items()],
            "columns_added": [c for c in scored.columns if c not in rows.columns],
            "created_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        if "flagged" in done:
            record["flagged"] = int(done["flagged"])
        if pipeline is not None:
            record["prepared_by"] = {"pipeline": str(pipeline.path), "sha256": pipeline.sha256,
                                     "quarantined": int(done.get("quarantined", 0))}
            if blended is not None:
                record["prepared_by"]["joins"] = blended.reports(done["joins"])
        (staging / RECORD).write_text(json.dumps(record, indent=1, sort_keys=True))
        output.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return record


def model_pipeline(store: ArtifactStore, card: dict, path: str | None) -> LoadedPipeline:
    """The pipeline that prepares raw rows for a model: the file given, else the file of the run that trained the
    model, as long as it is unchanged since.

    Raises:
        DataopsError: no file is given and the training run's file is gone or has changed since.
    """
    if path is not None:
        return load_pipeline(path)
    run_id = card.get("lineage", {}).get("run_id")
    try:
        trained_by = load_record(store, run_id)["pipeline"] if run_id else None
    except ArtifactNotFound:
        trained_by = None
    if not trained_by:
        raise DataopsError(f"model {card['name']}:{card.get('version')} names no run record in this store to find "
                           "its pipeline file: pass --pipeline FILE")
    file = Path(trained_by["path"])
    if not file.is_file():
        raise DataopsError(f"the pipeline file that trained {card['name']}:{card.get('version')} (run {run_id}), "
                           f"{file}, is gone: pass --pipeline FILE")
    pipeline = load_pipeline(file)
    if pipeline.sha256 != trained_by["sha256"]:
        raise DataopsError(f"{file} has changed since it trained {card['name']}:{card.get('version')} (run {run_id}):"
                           f" pass --pipeline {file} to prepare the rows with it as it is now")
    return pipeline


def predict_batch(ref: str, input_location: str, output: Path, store: str | None = None,
                  scheduler: str | None = None, range_policy: str = REJECT, raw: bool = False,
                  pipeline: str | None = None) -> dict:
    """``dataops predict``: score on the configured scheduler (over TLS and with this machine's code when it is
    remote), or with threads in this process when none is configured.

    With ``raw`` (or a ``pipeline`` file), the input is new rows of the base source, prepared as the pipeline does.
    """
    target = compute_target(scheduler, None)
    with open_client(target) if target.address else nullcontext() as client:
        return predict_to_path(open_store(setting("store", store)), ref, input_location, output, client=client,
                               range_policy=range_policy, raw=raw or pipeline is not None, pipeline_file=pipeline)
