"""Snapshots of ``web_api`` sources: each fetch's records become one JSON-lines file in the store, named by the
sha256 of its content, so that a run reads exactly what was fetched and its stages are cached by that content.

For every request (the URL, its parameters, where the records are, how pages follow each other) the store keeps a
record of each fetch, and the latest one beside them:

* ``web_api/snapshots/SHA256.jsonl``: the records, one JSON object a line, in the server's order;
* ``web_api/fetches/REQUEST/latest.json`` (and one ``FETCHED_AT.json`` per fetch): when it was fetched, from what
  URL (with no user information; the token is only ever in a header), how many pages, requests and records, and
  the snapshot's key and sha256.

Within ``refresh`` of the latest fetch its snapshot is read again without any request. After it, a new fetch is made;
when it yields the same records it yields the same file and the same fingerprint, and nothing downstream recomputes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.atomic import write_atomically
from orchestrator.errors import SourceError
from orchestrator.pipeline.web_api import Fetched, fetch_records
from orchestrator.pipeline.web_api_spec import WebApi

SNAPSHOTS = "web_api/snapshots"
FETCHES = "web_api/fetches"
_STAMP = "%Y-%m-%dT%H:%M:%SZ"

log = logging.getLogger(__name__)


def request_id(api: WebApi) -> str:
    """What identifies a request, whoever fetches it: everything of ``api`` that decides which records come back
    (not how they are fetched, and never a token, which is not in the file)."""
    asked = api.model_dump(mode="json", exclude=set(WebApi.FETCH_ONLY))
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:32]


def snapshot_records(records: list[dict]) -> bytes:
    """The snapshot file of ``records``: one compact JSON object a line, keys in the server's order, so that the
    same records always give the same bytes."""
    return b"".join(json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
                    for record in records)


def web_api_snapshot(api: WebApi, source: str, base_dir: Path, store: ArtifactStore, folder: Path, *,
                     now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                     fetch: Callable[..., Fetched] = fetch_records) -> Path:
    """The local file of the source's records: the latest snapshot while it is within ``refresh``, else a new fetch.

    Args:
        api: the source's ``web_api``.
        source: the source's name, for messages and fetch records.
        base_dir: the pipeline file's folder (an auth file is relative to it).
        store: where snapshots and fetch records are kept.
        folder: a local folder caching snapshot files on this machine.
        now: the current time, UTC (a fake in tests).
        fetch: fetches the records (``fetch_records``; a fake in tests).

    Returns:
        ``folder/SHA256.jsonl``: the same name for the same records.

    Raises:
        SourceError: the fetch failed or yielded no records (the message names the source and the URL).
    """
    request = request_id(api)
    latest_key = f"{FETCHES}/{request}/latest.json"
    latest = json.loads(store.get_bytes(latest_key)) if store.exists(latest_key) else None
    current = now()
    if latest is not None and _still_fresh(latest, api.refresh_seconds, current):
        log.info("source %r: the snapshot fetched at %s is reused (refresh %s)", source, latest["fetched_at"],
                 api.refresh)
        return _local_copy(store, latest, folder)
    fetched = fetch(api, source, base_dir)
    if not fetched.records:
        raise SourceError(f"source {source!r}: {fetched.url} gave no records ({fetched.pages} pages)")
    body = snapshot_records(fetched.records)
    sha256 = hashlib.sha256(body).hexdigest()
    local = folder / f"{sha256}.jsonl"
    if not local.exists():
        write_atomically(local, body)
    key = f"{SNAPSHOTS}/{sha256}.jsonl"
    if not store.exists(key):
        store.put_file(key, local)
    stamp = current.astimezone(timezone.utc).strftime(_STAMP)
    record = {"source": source, "url": fetched.url, "fetched_at": stamp, "pages": fetched.pages,
              "requests": fetched.requests, "records": len(fetched.records), "bytes": len(body),
              "snapshot": key, "sha256": sha256}
    text = json.dumps(record, indent=1).encode()
    store.put_bytes(f"{FETCHES}/{request}/{stamp}.json", text)
    store.put_bytes(latest_key, text)  # last: a reader finds the snapshot before the record pointing at it
    log.info("source %r: fetched %d records in %d pages (%d requests) from %s", source, len(fetched.records),
             fetched.pages, fetched.requests, fetched.url)
    return local


def latest_fetch(api: WebApi, store: ArtifactStore) -> dict | None:
    """The record of the latest fetch of ``api``'s request, None before the first."""
    key = f"{FETCHES}/{request_id(api)}/latest.json"
    return json.loads(store.get_bytes(key)) if store.exists(key) else None


def _still_fresh(latest: dict, refresh_s: float | None, current: datetime) -> bool:
    if refresh_s is None:  # refresh: never
        return True
    fetched = datetime.strptime(latest["fetched_at"], _STAMP).replace(tzinfo=timezone.utc)
    return (current - fetched).total_seconds() < refresh_s


def _local_copy(store: ArtifactStore, latest: dict, folder: Path) -> Path:
    local = folder / f"{latest['sha256']}.jsonl"
    if not local.exists() or local.stat().st_size != latest["bytes"]:
        store.get_file(latest["snapshot"], local, sha256=latest["sha256"])
    return local
