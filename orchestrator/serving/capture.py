"""Sampled capture of inference inputs and outputs, for drift detection.

A request is sampled with probability ``rate``; its arrays are put on a bounded queue (never blocking: when the
queue is full the sample is dropped and counted) and a background thread turns them into JSON Lines and writes them
in batches through a ``CaptureWriter``. Two writers are provided: a local folder (the default) and any artifact
store offering ``put_bytes(key, data)`` (the project's ArtifactStore, duck-typed so this package stands alone).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
import orjson

log = logging.getLogger("dataops.serving.capture")


class CaptureWriter(Protocol):
    """Where capture batches go: ``key`` is a relative ``/``-separated name, ``data`` one JSON Lines file."""

    def write(self, key: str, data: bytes) -> None:
        """Store one batch atomically."""


class FolderCaptureWriter:
    """Writes each batch as a file under ``root`` (temporary file, then rename: readers never see half a batch)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class StoreCaptureWriter:
    """Writes each batch as a blob of an artifact store (anything with ``put_bytes(key, data)``), under ``prefix``."""

    def __init__(self, store, prefix: str = "captures"):
        self.store = store
        self.prefix = prefix.strip("/")

    def write(self, key: str, data: bytes) -> None:
        self.store.put_bytes(f"{self.prefix}/{key}" if self.prefix else key, data)


@dataclass
class _Sample:
    ts: float
    model: str
    version: int
    request_id: str | None
    feeds: dict[str, np.ndarray]
    results: dict[str, np.ndarray]
    flags: dict


def _rows(sample: _Sample) -> list[bytes]:
    columns = {name: array.reshape(len(array), -1)[:, 0].tolist() for name, array in sample.feeds.items()}
    outputs = {name: array.tolist() for name, array in sample.results.items()}
    rows = len(next(iter(columns.values())))
    flagged = {row for rows_out in sample.flags.values() for row in rows_out}
    lines = []
    stamp = datetime.fromtimestamp(sample.ts, timezone.utc).isoformat()
    for row in range(rows):
        record = {
            "ts": stamp,
            "model": sample.model,
            "version": sample.version,
            "request_id": sample.request_id,
            "inputs": {name: values[row] for name, values in columns.items()},
            "outputs": {name: values[row] for name, values in outputs.items()},
        }
        if row in flagged:
            record["out_of_range"] = sorted(name for name, rs in sample.flags.items() if row in rs)
        lines.append(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY))
    return lines


class CaptureSampler:
    """Samples requests and writes them in batches from a background thread."""

    def __init__(self, writer: CaptureWriter, rate: float, batch_rows: int = 1000, flush_seconds: float = 5.0,
                 max_queue: int = 10000, on_drop=None, on_written=None, seed: int | None = None):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"capture rate must be within [0, 1], got {rate}")
        self.writer = writer
        self.rate = rate
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.on_drop = on_drop or (lambda: None)
        self.on_written = on_written or (lambda rows: None)
        self._random = random.Random(seed).random
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="capture-writer", daemon=True)
        self._sequence = 0
        self._started = False

    def start(self) -> None:
        if self.rate > 0 and not self._started:
            self._started = True
            self._thread.start()

    def offer(self, model: str, version: int, request_id, feeds, results, flags) -> bool:
        """Maybe sample one request; never blocks. Returns True if it was queued."""
        if not self._started or self._random() >= self.rate:
            return False
        try:
            self._queue.put_nowait(_Sample(time.time(), model, version, request_id, feeds, results, flags))
        except queue.Full:
            self.on_drop()
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the thread."""
        if self._started:
            self._stop.set()
            self._thread.join(timeout)

    def _run(self) -> None:
        pending: dict[tuple[str, int], list[bytes]] = {}
        count = 0
        deadline = time.monotonic() + self.flush_seconds
        while True:
            timeout = max(0.0, deadline - time.monotonic())
            try:
                sample = self._queue.get(timeout=min(timeout, 0.2))
            except queue.Empty:
                sample = None
            if sample is not None:
                lines = _rows(sample)
                pending.setdefault((sample.model, sample.version), []).extend(lines)
                count += len(lines)
            stopping = self._stop.is_set() and self._queue.empty()
            if count and (count >= self.batch_rows or time.monotonic() >= deadline or stopping):
                self._flush(pending)
                pending, count = {}, 0
            if time.monotonic() >= deadline:
                deadline = time.monotonic() + self.flush_seconds
            if stopping:
                return

    def _flush(self, pending: dict[tuple[str, int], list[bytes]]) -> None:
        now = datetime.now(timezone.utc)
        for (model, version), lines in pending.items():
            self._sequence += 1
            key = (f"{model}/{version}/{now:%Y-%m-%d}/"
                   f"{now:%Y%m%dT%H%M%S%fZ}-{os.getpid()}-{self._sequence:06d}.jsonl")
            try:
                self.writer.write(key, b"\n".join(lines) + b"\n")
                self.on_written(len(lines))
            except Exception:  # a failing store must not stop serving; the batch is lost and logged
                log.exception("capture batch %s of %d rows could not be written", key, len(lines))
