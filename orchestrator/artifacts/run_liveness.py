"""Whether a run recorded as ``running`` still runs: a run whose process died is shown as ``interrupted``.

A run record names the process running it (host, pid and the process's start time, which tells a reused pid from
the original). A reader on the same host asks the operating system: a process that is gone, or a pid now held by
another process, means the run was interrupted, known at once. A reader on another host cannot see that process;
it reads the run's heartbeat instead (``runs/<id>/heartbeat.json``, rewritten every ``BEAT_S`` by a thread of the
running process): a heartbeat older than ``STALE_S`` means the process stopped beating, so there the run shows
``running`` for up to ``STALE_S`` after its process died, then ``interrupted``. The record itself is never rewritten
by a reader: a late heartbeat (a store slow for a while) turns the run back to ``running``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from datetime import datetime, timezone

import psutil

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound

log = logging.getLogger(__name__)

RUNNING, INTERRUPTED = "running", "interrupted"
# Beats four times within the staleness limit: a store slow for a minute does not make a live run look dead.
BEAT_S = 30.0
STALE_S = 120.0
# Process start times are read from the kernel's clock ticks: the same process always gives the same value.
_START_SLACK_S = 1.0


def heartbeat_key(run_id: str) -> str:
    return f"runs/{run_id}/heartbeat.json"


def this_process() -> dict:
    """Where the calling process runs, for its run record: ``host``, ``pid`` and ``started`` (epoch seconds)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": psutil.Process().create_time()}


def _utc(stamp: datetime) -> str:
    return stamp.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


class RunHeartbeat:
    """Rewrites a run's heartbeat from a thread of its own until stopped: a killed process stops beating."""

    def __init__(self, store: ArtifactStore, run_id: str, every_s: float = BEAT_S):
        self.store, self.run_id, self.every_s = store, run_id, every_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat_until_stopped, name=f"heartbeat {run_id}", daemon=True)

    def _beat(self) -> None:
        beat = {"at": _utc(datetime.now(timezone.utc)), **this_process()}
        self.store.put_bytes(heartbeat_key(self.run_id), json.dumps(beat).encode())

    def _beat_until_stopped(self) -> None:
        while not self._stopped.wait(self.every_s):
            try:
                self._beat()
            except Exception as exc:  # a store failing for a moment: the next beat may pass; staleness decides
                log.warning("heartbeat of run %s failed: %s", self.run_id, exc)

    def start(self) -> RunHeartbeat:
        """Beat once now, then every ``every_s`` seconds."""
        self._beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()


def _alive_here(process: dict) -> bool:
    try:
        found = psutil.Process(process["pid"])
        if found.status() == psutil.STATUS_ZOMBIE:
            return False
        started = process.get("started")
        return started is None or abs(found.create_time() - started) < _START_SLACK_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # someone else's process holds the pid: it exists, its start time is unknown
        return True


def observed_status(record: dict, store: ArtifactStore, now: datetime | None = None) -> dict:
    """``record`` as a reader should see it: a ``running`` run whose process is gone is ``interrupted``, with
    ``status_reason`` saying how that was found. Other records, and records that do not name their process
    (written before runs did), are returned as they are.

    Args:
        record: a run record as saved.
        store: the store holding it (for the heartbeat).
        now: the reader's time (default: now), for a run on another host.
    """
    process = record.get("process")
    if record.get("status") != RUNNING or not isinstance(process, dict):
        return record
    where = f"process {process.get('pid')} on {process.get('host')}"
    if process.get("host") == socket.gethostname():
        if _alive_here(process):
            return record
        return {**record, "status": INTERRUPTED, "status_reason": f"{where} is gone"}
    now = now or datetime.now(timezone.utc)
    try:
        beat = _parse(json.loads(store.get_bytes(heartbeat_key(record["run_id"])))["at"])
    except ArtifactNotFound:
        beat = _parse(record["started_at"])  # between the record's first write and the first beat
    age = (now - beat).total_seconds()
    if age <= STALE_S:
        return record
    return {**record, "status": INTERRUPTED,
            "status_reason": f"{where} last beat at {_utc(beat)}, {age:.0f} s ago (more than {STALE_S:.0f} s)"}
