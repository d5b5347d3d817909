"""Drift checks behind ``dataops drift check | report``: which model, which rows, counted how, kept where.

A check resolves the model (a reference, or the version an endpoint serves), reads its reference profile and
policy, counts the window batch by batch on the profile's frozen edges (captured batches from a store or a capture
folder; or any dataset, partition by partition on Dask), holds the merged counts against the profile and keeps the
result in the store under ``monitoring/<model>/<version>/checks/<check_id>/``: ``result.json`` (with its lineage),
``counts.json`` (the window's counts, mergeable) and ``report.html``; ``latest.json`` names the latest check.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from orchestrator.artifacts.open import open_store
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.atomic import write_atomically
from orchestrator.config import setting
from orchestrator.errors import ArtifactNotFound, DataopsError, SchemaMismatch
from orchestrator.monitoring.check import DriftResult, check_drift
from orchestrator.monitoring.counts import WindowCounts, count_dask, count_window
from orchestrator.monitoring.keys import checks_prefix, monitoring_prefix
from orchestrator.monitoring.profile import (
    CategoricalCounts,
    NumericCounts,
    ReferenceProfile,
)
from orchestrator.monitoring.report import render_report
from orchestrator.monitoring.windows import (
    CAPTURED_AT,
    STORE_CAPTURES,
    LastRows,
    TimeWindow,
    Window,
    capture_day,
    capture_frame,
    choose_window,
    newest,
    within,
)
from orchestrator.registry.models import ModelRegistry
from orchestrator.usecases.compute import compute_target, open_client
from orchestrator.usecases.drift_profile import (
    load_drift_policy,
    load_reference_profile,
)

CHECK_FORMAT = "dataops.drift-check/1"
# Exit codes of ``dataops drift check`` for its verdicts; errors keep their own (DataopsError.exit_code).
EXIT_CODES = {"no_drift": 0, "drift": 20, "insufficient_data": 21}
# The checks a report draws over time, by default: a month of daily checks.
REPORT_CHECKS = 30


@dataclass(frozen=True)
class CheckedModel:
    """The model version a check is about, where its registry lives, and the endpoint serving it (if named)."""

    store: ArtifactStore
    name: str
    version: int
    card: dict
    endpoint: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def prefix(self) -> str:
        return monitoring_prefix(self.name, self.version)


@dataclass
class Check:
    """A finished check: its stored record (result and lineage), the result itself, and where it was kept."""

    record: dict
    result: DriftResult
    result_key: str
    report_key: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.result.verdict]


# ---- captures: a store's captures/ or a capture folder -------------------------------------------------------
class StoreCaptures:
    """Captured batches kept in an artifact store under ``captures/`` (``dataops serve --capture-store``)."""

    def __init__(self, store: ArtifactStore, prefix: str = STORE_CAPTURES):
        self.store = store
        self.prefix = prefix
        self.location = f"{store.uri.rstrip('/')}/{prefix}"

    def batches(self, model: str, version: int, day: str | None = None) -> list[str]:
        """Keys of the model version's batches (of one day when given), oldest first."""
        folder = f"{self.prefix}/{model}/{version}/" + (f"{day}/" if day else "")
        return sorted(k for k in self.store.list(folder) if k.endswith(".jsonl") and capture_day(k))

    def read(self, key: str) -> bytes:
        return self.store.get_bytes(key)


class FolderCaptures:
    """Captured batches in a local capture folder (``dataops serve --capture-dir``)."""

    def __init__(self, root: Path):
        self.root = Path(root).expanduser().resolve()
        self.location = str(self.root)
        if not self.root.is_dir():
            raise ArtifactNotFound(f"capture folder {self.root} does not exist")

    def batches(self, model: str, version: int, day: str | None = None) -> list[str]:
        folder = self.root / model / str(version)
        files = (folder / day).glob("*.jsonl") if day else folder.glob("*/*.jsonl")
        # Files being written are hidden (".tmp-...") until renamed: they are not batches yet.
        keys = (f.relative_to(self.root).as_posix() for f in files if not f.name.startswith("."))
        return sorted(k for k in keys if capture_day(k))

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()


Captures = StoreCaptures | FolderCaptures


# ---- which model -----------------------------------------------------------------------------------------------
def served_by(endpoint: str) -> tuple[str, int, str | None]:
    """The model name and version an endpoint serves (its last successful deploy) and the store it deployed from.

    Raises:
        EndpointNotFound: no such endpoint on this machine.
        DataopsError: the endpoint serves nothing yet.
    """
    from orchestrator.deploy.state import endpoint_state

    state = endpoint_state(endpoint)
    if state.exists():
        from orchestrator.usecases.deploy import adopt_shared_history, cloud_of

        adopt_shared_history(endpoint, cloud_of(endpoint))  # a watch may have deployed through the store since
        record, serving = state.load(), state.serving()
    else:  # deployed from another machine: its shared record says what it serves
        from orchestrator.usecases.deploy import shared_endpoint

        record = shared_endpoint(endpoint)
        if record is None:
            state.load()  # raises EndpointNotFound, naming the endpoints of this machine
        done = [entry for entry in record.get("history", []) if entry.get("status") == "succeeded"]
        serving = done[-1] if done else None
    if serving is None:
        raise DataopsError(f"endpoint {endpoint} serves no model yet: deploy one with `dataops deploy`")
    return serving["model"], int(serving["version"]), record.get("store")


def checked_model(ref: str | None, endpoint: str | None, store_location: str | None) -> CheckedModel:
    """The model version to check: ``ref`` through the registry, or the version ``endpoint`` serves.

    Raises:
        DataopsError: neither given, or ``ref`` names another model than the endpoint serves.
        ArtifactNotFound: the registry has no such model or version.
    """
    if endpoint:
        name, version, endpoint_store = served_by(endpoint)
        if ref and ref.split(":")[0].split("@")[0] != name:
            raise DataopsError(f"endpoint {endpoint} serves {name}:{version}, not {ref}: drop MODEL or name "
                               f"{name}")
        store = open_store(store_location or endpoint_store or setting("store", None))
        ref = f"{name}:{version}"
    elif ref:
        store = open_store(setting("store", store_location))
    else:
        raise DataopsError("name the model to check (MODEL[:VERSION|@STAGE]) or the endpoint serving it (--endpoint)")
    registry = ModelRegistry(store)
    name, version = registry.resolve(ref)
    return CheckedModel(store, name, version, registry.card(f"{name}:{version}"), endpoint)


# ---- counting ---------------------------------------------------------------------------------------------------
def _missing_tokens(card: dict) -> dict[str, str]:
    """Per categorical input, the token the server feeds for a missing value (read back as missing)."""
    return {item["name"]: item.get("missing_value", "__missing__")
            for item in card.get("inputs", []) if item.get("datatype") == "BYTES"}


def _frames(model: CheckedModel, captures: Captures, keys: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    classes, missing = model.card.get("classes"), _missing_tokens(model.card)
    for key in keys:
        yield key, capture_frame(captures.read(key), model.name, model.version, classes, missing, source=key)


def count_time_window(profile: ReferenceProfile, model: CheckedModel, captures: Captures,
                      window: TimeWindow) -> tuple[WindowCounts, list[str], dict]:
    """Count the rows captured in ``window``, one batch at a time, reading only the days and batches it spans.

    Returns:
        The merged counts, the keys of the batches that held rows of the window, and the window's description.
    """
    total, read = WindowCounts(), []
    for day in window.days():
        keys = [k for k in captures.batches(model.name, model.version, day) if window.may_hold(k)]
        for key, frame in _frames(model, captures, keys):
            if len(frame):
                frame = within(frame, window)
            if len(frame):
                total = total.merge(count_window(profile, frame))
                read.append(key)
    return total, read, {**window.describe(), "rows": total.rows}


def count_last_rows(profile: ReferenceProfile, model: CheckedModel, captures: Captures,
                    window: LastRows) -> tuple[WindowCounts, list[str], dict]:
    """Count the newest ``window.rows`` captured rows, reading batches from the newest until there are enough."""
    frames, rows, read = [], 0, []
    newest_first = sorted(captures.batches(model.name, model.version), key=lambda k: (capture_day(k), k),
                          reverse=True)
    for key, frame in _frames(model, captures, newest_first):
        if not len(frame):
            continue
        frames.append(frame)
        read.append(key)
        rows += len(frame)
        if rows >= window.rows:
            break
    chosen = newest(pd.concat(frames, ignore_index=True), window.rows) if frames else pd.DataFrame()
    description = {**window.describe(), "rows": len(chosen)}
    if len(chosen):
        description["since"] = _iso(chosen[CAPTURED_AT].min())
        description["until"] = _iso(chosen[CAPTURED_AT].max())
    return count_window(profile, chosen), sorted(read), description


def count_data(profile: ReferenceProfile, model: CheckedModel, location: str,
               scheduler: str | None = None) -> tuple[WindowCounts, dict]:
    """Count a dataset (CSV, Parquet or JSON lines; a file, folder, glob or URL) partition by partition on Dask.

    Scored batches (``dataops predict``'s output) carry ``prediction`` and ``proba_<class>``: their outputs are
    checked too.

    Raises:
        SourceError: the data cannot be read.
        SchemaMismatch: a model input is not a column of the data.
    """
    from orchestrator.pipeline import sources

    # The same reading of a batch as ``dataops predict``'s: what batch scoring takes, a check takes.
    from orchestrator.usecases.predict import input_fingerprint, input_source

    source, files = input_source(location, model.store)
    frame = sources.read_source(source, files, None if files else [location])
    features = [c.name for c in profile.columns if c.role == "feature"]
    absent = [name for name in features if name not in frame.columns]
    if absent:
        raise SchemaMismatch(f"{location} lacks the model input column(s) {', '.join(absent)}; columns present: "
                             f"{', '.join(map(str, frame.columns))}")
    monitored = [c.name for c in profile.columns if c.name in frame.columns]
    target = compute_target(scheduler, None)
    with open_client(target) if target.address else nullcontext() as client:
        counts = count_dask(profile, frame[monitored], client)
    return counts, {"location": location, "fingerprint": input_fingerprint(location, files)}


# ---- the check --------------------------------------------------------------------------------------------------
def new_check_id(now: dt.datetime) -> str:
    """A UTC time stamp (to the microsecond, so that ids sort as checks ran) and a random suffix."""
    return now.strftime("%Y%m%d-%H%M%S.%f-") + secrets.token_hex(2)


def check_model_drift(
    ref: str | None = None,
    *,
    endpoint: str | None = None,
    window: str | None = None,
    since: str | None = None,
    until: str | None = None,
    last_rows: int | None = None,
    data: str | None = None,
    store: str | None = None,
    capture_dir: Path | None = None,
    scheduler: str | None = None,
    now: dt.datetime | None = None,
) -> Check:
    """``dataops drift check``: count a window, hold it against the model's reference, keep the result.

    Args:
        ref: ``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``; optional with ``endpoint``.
        endpoint: Check the version this endpoint serves, with the captures of the store it deployed from.
        window: A duration ending at ``until`` (or now), such as ``24h``.
        since: The window's start, ISO 8601.
        until: The window's end, ISO 8601.
        last_rows: The newest captured rows to read, instead of a time span.
        data: A dataset to check instead of captures (a file, folder, glob or URL).
        store: The store holding the registry, the captures and the results.
        capture_dir: A capture folder to read instead of the store's ``captures/``.
        scheduler: The Dask scheduler counting ``data`` (default: the setting, else threads here).
        now: The current time (tests); default the clock.

    Returns:
        The check, already stored.

    Raises:
        InvalidWindow: the window options contradict each other.
        ArtifactNotFound: no such model, or it has no reference profile.
        SchemaMismatch: ``data`` lacks a model input.
    """
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    model = checked_model(ref, endpoint, store)
    profile = load_reference_profile(model.store, model.ref)
    policy = load_drift_policy(model.store, model.ref)
    lineage = {"model": {"name": model.name, "version": model.version,
                         "sha256": model.card["files"]["model.onnx"]["sha256"]}, "endpoint": model.endpoint}
    if data:
        if any(option is not None for option in (window, since, until, last_rows)) or capture_dir:
            raise DataopsError("--data checks a dataset: it takes no --window, --since, --until, --last-rows or "
                               "--capture-dir")
        counts, lineage["data"] = count_data(profile, model, data, scheduler)
        description = {"kind": "data", "rows": counts.rows, "location": data}
    else:
        chosen: Window = choose_window(window, since, until, last_rows, now)
        captures = FolderCaptures(capture_dir) if capture_dir else StoreCaptures(model.store)
        if isinstance(chosen, LastRows):
            counts, keys, description = count_last_rows(profile, model, captures, chosen)
        else:
            counts, keys, description = count_time_window(profile, model, captures, chosen)
        lineage["captures"] = {"location": captures.location, "keys": keys}
    result = check_drift(profile, counts, policy)
    check_id = new_check_id(now)
    folder = f"{model.prefix}/checks/{check_id}"
    record = {
        "format": CHECK_FORMAT, "check_id": check_id, "checked_at": _iso(now), "verdict": result.verdict,
        "window": description, "lineage": lineage, "result": result.to_dict(),
        "files": {"result": f"{folder}/result.json", "counts": f"{folder}/counts.json",
                  "report": f"{folder}/report.html"},
    }
    model.store.put_bytes(record["files"]["counts"], _json(counts_to_dict(counts)))
    model.store.put_bytes(record["files"]["result"], _json(record))
    history = stored_checks(model.store, model.name, model.version, REPORT_CHECKS)
    html = render_report(profile, history, counts)
    model.store.put_bytes(record["files"]["report"], html.encode())
    # Written last: the latest check named here is always complete.
    model.store.put_bytes(f"{model.prefix}/latest.json", _json(
        {"check_id": check_id, "checked_at": record["checked_at"], "verdict": result.verdict,
         "result": record["files"]["result"]}))
    return Check(record, result, record["files"]["result"], record["files"]["report"])


# ---- stored checks ----------------------------------------------------------------------------------------------
def stored_checks(store: ArtifactStore, name: str, version: int, limit: int | None = None) -> list[dict]:
    """The stored check records of a model version, oldest first (the newest ``limit`` when given)."""
    prefix = checks_prefix(name, version)
    keys = sorted(k for k in store.list(prefix) if k.endswith("/result.json"))
    if limit is not None:
        keys = keys[-limit:] if limit > 0 else []
    records = [json.loads(store.get_bytes(key)) for key in keys]
    return sorted(records, key=lambda r: r["checked_at"])


def latest_check(store: ArtifactStore, name: str, version: int) -> dict | None:
    """The model version's latest check (``latest.json``: id, time, verdict, result key), or None if never checked."""
    key = f"{monitoring_prefix(name, version)}/latest.json"
    return json.loads(store.get_bytes(key)) if store.exists(key) else None


def window_counts(store: ArtifactStore, record: dict) -> WindowCounts | None:
    """The counts a stored check was decided on, or None when they are not kept."""
    key = record.get("files", {}).get("counts")
    if not key or not store.exists(key):
        return None
    return counts_from_dict(json.loads(store.get_bytes(key)))


def write_drift_report(ref: str, output: Path | None = None, checks: int = REPORT_CHECKS,
                       store: str | None = None) -> Path:
    """``dataops drift report``: the HTML report of a model version's latest ``checks`` checks, written to a file.

    Returns:
        The file written (default ``<model>-<version>-drift.html`` here).

    Raises:
        ArtifactNotFound: no such model, no profile, or the version was never checked.
    """
    if checks < 1:
        raise DataopsError(f"--checks must be at least 1, got {checks}")
    target = open_store(setting("store", store))
    name, version = ModelRegistry(target).resolve(ref)
    history = stored_checks(target, name, version, checks)
    if not history:
        raise ArtifactNotFound(f"model {name}:{version} has no drift check in {target.uri}: run "
                               f"`dataops drift check {name}:{version}` first")
    profile = load_reference_profile(target, f"{name}:{version}")
    html = render_report(profile, history, window_counts(target, history[-1]))
    path = Path(output or f"{name}-{version}-drift.html")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, html.encode())
    return path


def counts_to_dict(counts: WindowCounts) -> dict:
    return {"rows": counts.rows,
            "columns": {name: {"kind": "numeric" if isinstance(c, NumericCounts) else "categorical", **asdict(c)}
                        for name, c in counts.columns.items()}}


def counts_from_dict(data: dict) -> WindowCounts:
    columns = {}
    for name, raw in data["columns"].items():
        raw = dict(raw)
        kind = raw.pop("kind")
        columns[name] = NumericCounts(**raw) if kind == "numeric" else CategoricalCounts(**raw)
    return WindowCounts(data["rows"], columns)


def _json(data) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode()


def _iso(instant) -> str:
    return pd.Timestamp(instant).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
