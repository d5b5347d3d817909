"""Sampled capture of inference inputs and outputs, for drift detection.

A request is sampled with probability ``rate``; its arrays are put on a bounded queue (never blocking: when the
queue is full the sample is dropped and counted) and a background thread turns them into JSON Lines and writes them
in batches through a ``CaptureWriter``. Three writers are provided: a local folder (the default), any artifact
store offering ``put_bytes(key, data)`` (the project's ArtifactStore, duck-typed so this package stands alone), and
a signed folder URL (a Swift TempURL granting writes under one prefix only), with which an inference VM holding no
cloud credential writes its captures into the store the endpoint was deployed from.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import re
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol
from urllib.parse import quote, urlsplit, urlunsplit

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


class SignedUrlCaptureWriter:
    """PUTs each batch under a signed folder URL: ``https://HOST/v1/ACCOUNT/CONTAINER/PREFIX?temp_url_prefix=...``,
    the signature covering every object under ``PREFIX/`` (Swift's prefix TempURL), so the node can add captures
    there and can neither read them nor write anywhere else.

    The URL is a secret kept in a file (mode 0600 on the node; never on a command line, never logged), read again
    for every batch: a deploy that signs a new one replaces the file, and the server goes on without a restart.

    Args:
        url_file: the file holding the signed folder URL; a batch's key is appended to its path, its query stays.
        attempts: tries per batch (a second of backoff, doubling) before the batch is given up and logged.
        timeout_s: longest wait for one PUT.
    """

    def __init__(self, url_file: Path, attempts: int = 3, timeout_s: float = 30.0, sleep=time.sleep):
        self.url_file, self.attempts, self.timeout_s, self._sleep = Path(url_file), attempts, timeout_s, sleep
        self._folder_url()  # a missing, empty or malformed file stops the server at start, not at the first batch

    def _folder_url(self):
        url = self.url_file.read_text(encoding="utf-8").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or "temp_url_sig=" not in parts.query:
            raise ValueError(f"{self.url_file} holds no signed http(s) folder URL (temp_url_sig=...)")
        return parts

    def object_url(self, key: str) -> str:
        parts = self._folder_url()
        return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{quote(key)}"))

    def write(self, key: str, data: bytes) -> None:
        for attempt in range(1, self.attempts + 1):
            request = urllib.request.Request(self.object_url(key), data=data, method="PUT",
                                             headers={"Content-Type": "application/x-ndjson"})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    response.read()
                return
            except (urllib.error.URLError, OSError) as exc:
                # The exception's text would carry the signed URL: only its kind and status are kept.
                status = getattr(exc, "code", None)
                if attempt == self.attempts or status in (401, 403):
                    raise OSError(f"capture PUT failed ({type(exc).__name__}"
                                  f"{f' {status}' if status else ''}, attempt {attempt})") from None
                self._sleep(2.0 ** (attempt - 1))


def _node_name() -> str:
    """This host's name, as a capture key may hold it: nodes of one endpoint never write the same key."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname())[:64] or "node"


_NODE = _node_name()


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
                   f"{now:%Y%m%dT%H%M%S%fZ}-{_NODE}-{os.getpid()}-{self._sequence:06d}.jsonl")
            try:
                self.writer.write(key, b"\n".join(lines) + b"\n")
                self.on_written(len(lines))
            except Exception:  # a failing store must not stop serving; the batch is lost and logged
                log.exception("capture batch %s of %d rows could not be written", key, len(lines))
