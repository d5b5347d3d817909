"""Run a pipeline on a Dask client: each stage is looked up in the content-addressed cache, run only when missing,
published atomically, and recorded (with what it read and what it wrote) in the run record.

The runner knows no stage by name: what a stage is handed (its source's frame, upstream outputs, a PartitionView on
its partitions) and which of its metadata reach the run record come from its kind's declaration
(``orchestrator.pipeline.stage_kinds``)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from distributed import Client

from orchestrator.artifacts.disk_space import disk_full_error, disk_space_checked, is_disk_full
from orchestrator.artifacts.lineage import library_versions, new_run_id, now, save_record
from orchestrator.artifacts.run_liveness import RunHeartbeat, this_process
from orchestrator.artifacts.store import MANIFEST, ArtifactStore, manifest_digest
from orchestrator.errors import DataopsError, StageFailed, StoreFull, ValidationFailed
from orchestrator.pipeline import sources as source_io
from orchestrator.pipeline.cache import STAGE_META, cache_location, stage_key
from orchestrator.pipeline.column_check import check_pipeline_columns
from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.graph import Stage, build_graph
from orchestrator.pipeline.isolation import PartitionView
from orchestrator.pipeline.spec import LoadedPipeline
from orchestrator.pipeline.stage_data import DatasetFolders, StageData, stage_data

StageEvent = Callable[[str, str, dict], None]


@dataclass
class SourceFiles:
    """A source's files on this machine, their sha256s, and one fingerprint of them all."""

    paths: list[Path]
    sha256s: list[str]
    fingerprint: str


@dataclass
class RunResult:
    run_id: str
    record: dict


def _published_meta(store: ArtifactStore, location: str) -> tuple[dict, str]:
    # Only the two small files: a cached stage's data stays where it is until a later stage reads it.
    meta = json.loads(store.get_bytes(f"{location}/{STAGE_META}"))
    digest = manifest_digest(json.loads(store.get_bytes(f"{location}/{MANIFEST}")))
    return meta, digest


def run_pipeline(
    pipeline: LoadedPipeline,
    store: ArtifactStore,
    client: Client,
    on_event: StageEvent | None = None,
    stage_hook: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int, float | None], None] | None = None,
    as_of: str | None = None,
    run_parameters: dict | None = None,
) -> RunResult:
    """Execute every stage of ``pipeline``; completed stages are reused from the cache.

    Args:
        pipeline: the loaded pipeline file.
        store: where the cache, the run record and the artifacts go.
        client: the Dask client every data stage computes on.
        on_event: called with (stage, "start"|"done"|"cached"|"failed", info) for progress display.
        stage_hook: called with the stage name just before it runs (tests use it to interrupt a run).
        on_progress: called by the tuner with (candidates done, total, best score so far).
        as_of: the time the run is for (a schedule's slot, ISO 8601 UTC), kept in the record's parameters.
        run_parameters: more entries for the record's parameters, beside the file's (an experiment and its point).

    Raises:
        DataopsError: a stage failed; the run record says which and why.
    """
    notify = on_event or (lambda *_: None)
    # A split window follows the slot the run is for (a run by hand: the time it starts); the fixed dates it
    # resolves to are what the record shows and what the split's cache key holds.
    pipeline = pipeline.at(as_of or now())
    run_id = new_run_id()
    record = {
        "run_id": run_id,
        "pipeline": {"name": pipeline.spec.name, "path": str(pipeline.path), "sha256": pipeline.sha256},
        "status": "running",
        "started_at": now(),
        # Who runs it: a reader tells a run whose process died from one still running (run_liveness).
        "process": this_process(),
        "store": store.uri,
        "scheduler": client.scheduler.address if client.scheduler else None,
        "parameters": {**pipeline.spec.model_dump(mode="json"), **({"as_of": as_of} if as_of else {}),
                       **(run_parameters or {})},
        "stages": {},
        "metrics": {},
        "artifacts": [],
        "library_versions": library_versions(),
    }
    save_record(store, record)
    heartbeat = RunHeartbeat(store, run_id).start()
    keys: dict[str, str] = {}
    locations: dict[str, str] = {}
    metas: dict[str, dict] = {}
    scratch: list[Path] = []
    started = time.perf_counter()
    try:
        graph = build_graph(pipeline)
        source_inputs = _source_inputs(pipeline, store, graph)
        check_pipeline_columns(pipeline, {name: source_io.read_source(pipeline.spec.sources[name], files.paths)._meta
                                          for name, files in source_inputs.items()})
        for stage in graph:
            inputs = cache_inputs(stage, keys, source_inputs)
            key = stage_key(stage.name, stage.config, stage.code, inputs)
            keys[stage.name] = key
            location = cache_location(stage.name, key)
            entry = {"key": key, "inputs": inputs, "reads": {}}
            t0 = time.perf_counter()
            if stage.cached and store.exists(location):
                meta, digest = _published_meta(store, location)
                entry["status"] = "cached"
                notify(stage.name, "cached", meta)
            else:
                notify(stage.name, "start", {})
                if stage_hook:
                    stage_hook(stage.name)
                out_dir = store.scratch_dir()
                scratch.append(out_dir)
                data = stage_data(store, out_dir, location)
                ctx = _context(stage, pipeline, store, data, client, run_id, out_dir, locations, metas, source_inputs)
                ctx.on_progress = on_progress
                try:
                    meta = stage.run(ctx)
                except DataopsError:
                    raise
                except Exception as exc:
                    if is_disk_full(exc):  # on this machine or on a worker writing the stage's output
                        raise disk_full_error(out_dir, f"the output of stage {stage.name!r}") from exc
                    raise StageFailed(f"stage {stage.name!r} failed: {type(exc).__name__}: {exc}") from exc
                if ctx.partitions is not None:
                    meta["reads"] = ctx.partitions.reads
                meta["key"] = key
                if failure := meta.get("failed"):
                    if stage.writes.quarantine:
                        kept = _keep_quarantine(data, run_id, stage, record)
                        failure += f"; quarantined rows with reasons: {kept}"
                    raise ValidationFailed(failure)
                with disk_space_checked(out_dir, f"the output of stage {stage.name!r}"):
                    (out_dir / STAGE_META).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
                digest = data.publish(location).sha256
                entry["status"] = "ran"
                notify(stage.name, "done", meta)
            entry.update(
                elapsed_s=round(time.perf_counter() - t0, 3),
                rows_in=meta.get("rows_in"),
                rows_out=meta.get("rows_out"),
                reads=meta.get("reads", {}),
                outputs=[{"key": location, "sha256": digest}],
            )
            entry.update({name: meta[name] for name in stage.writes.record if name in meta})
            locations[stage.name], metas[stage.name] = location, meta
            record["stages"][stage.name] = entry
            record["artifacts"].append({"name": stage.name, "key": location, "sha256": digest})
            record.update({name: meta[name] for name in stage.writes.run_record if name in meta})
            save_record(store, record)
        record["status"] = "succeeded"
    except KeyboardInterrupt:
        record["status"] = "interrupted"
        raise
    except DataopsError as exc:
        record["status"] = "failed"
        record["error"] = str(exc)
        raise
    finally:
        heartbeat.stop()
        # Scratch first: on a full disk, what a failed stage left there is the space the record needs.
        for folder in scratch:
            shutil.rmtree(folder, ignore_errors=True)
        record["finished_at"] = now()
        record["elapsed_s"] = round(time.perf_counter() - started, 3)
        try:
            save_record(store, record)
        except StoreFull:
            if record["status"] == "succeeded":
                raise
            # The error that ended the run says more than the record it left no room for.
    return RunResult(run_id, record)


def cache_inputs(stage: Stage, keys: dict[str, str], sources: dict[str, SourceFiles]) -> dict[str, str]:
    """What enters ``stage``'s cache key besides its config and code: the key of every stage it reads and, for a
    stage reading a source, the fingerprint of the source's files (as ``data``)."""
    inputs = {upstream: keys[upstream] for upstream in stage.depends}
    if stage.reads.source is not None:
        inputs["data"] = sources[stage.reads.source].fingerprint
    return inputs


def _source_inputs(pipeline: LoadedPipeline, store: ArtifactStore, graph: list[Stage]) -> dict[str, SourceFiles]:
    """The files of every source a stage reads, resolved (downloaded when remote) and hashed before any stage runs."""
    read = {stage.reads.source for stage in graph if stage.reads.source is not None}
    found = {}
    for name, source in pipeline.spec.sources.items():
        if name not in read:
            continue
        files = source_io.resolve_files(source, pipeline.base_dir, store, name)
        sha256s = source_io.file_sha256s(files, store)
        found[name] = SourceFiles(files, sha256s, source_io.fingerprint_files(files, sha256s))
    return found


def _context(stage: Stage, pipeline, store, data, client, run_id, out_dir, locations, metas, source_inputs) -> StageContext:
    """Exactly what the stage's kind declares it reads, and nothing more."""
    reads = stage.reads
    # Post-split stages get the partitions only through the view, never the split's output itself.
    upstream = {name: locations[name] for name in reads.outputs}
    ctx = StageContext(
        name=stage.name,
        spec=pipeline.spec,
        base_dir=pipeline.base_dir,
        out_dir=out_dir,
        client=client,
        store=store,
        run_id=run_id,
        data=data,
        locations=upstream,
        inputs=DatasetFolders(store, upstream),
        upstream={name: metas[name] for name in stage.depends},
        source=reads.source,
    )
    if reads.source is not None:
        files = source_inputs[reads.source]
        ctx.source_frames[reads.source] = source_io.read_source(pipeline.spec.sources[reads.source], files.paths,
                                                                data.source_paths(files.paths, files.sha256s))
    if reads.partitions:
        split = locations[reads.partitions_of]
        ctx.partitions = PartitionView(stage.name, reads.partitions, lambda part: data.read(split, part),
                                       metas[reads.partitions_of]["partitions"])
    return ctx


def _keep_quarantine(data: StageData, run_id: str, stage: Stage, record: dict) -> str:
    """A failed validation still publishes its quarantined rows, so the user can see why; returns their key."""
    key = f"runs/{run_id}/quarantine/{stage.reads.source or stage.name}"
    info = data.publish_part(stage.writes.quarantine, key)
    record["artifacts"].append({"name": f"{stage.name}.quarantine", "key": key, "sha256": info.sha256})
    return key
