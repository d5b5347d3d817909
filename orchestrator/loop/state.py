"""What a decision is made on, read from the store: the served version's recent drift checks and the watch's
retrain history.

Drift checks are kept as the drift check writes them (``orchestrator/monitoring/README.md``):
``monitoring/<model>/<version>/checks/<check_id>/result.json``, format ``dataops.drift-check/1``, whose id begins
with the time of the check (``20260501-120000.123456-ab12``). A check's window ends at its ``window.until`` (the span
asked for, or the newest row read); a check of a dataset, which has no time, ends when it ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.loop.decide import CheckResult, Decision, Retrain, Served, decide
from orchestrator.loop.records import retrain_history
from orchestrator.monitoring.keys import checks_prefix
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.scheduling.state import parse_instant

CHECK_FORMAT = "dataops.drift-check/1"
_CHECK_STAMP = "%Y%m%d-%H%M%S.%f"


def check_from_record(record: dict) -> CheckResult:
    """The decision's view of a stored check record (``result.json``).

    Raises:
        ValueError: the record is not a ``dataops.drift-check/1`` record.
    """
    if record.get("format") != CHECK_FORMAT:
        raise ValueError(f"not a drift check record ({CHECK_FORMAT}): format {record.get('format')!r}")
    window = record.get("window") or {}
    checked_at = parse_instant(record["checked_at"])
    end = parse_instant(window["until"]) if window.get("until") else checked_at
    rows = window.get("rows", (record.get("result") or {}).get("rows", 0))
    return CheckResult(record["check_id"], end, record["verdict"], int(rows),
                       int(record["lineage"]["model"]["version"]), checked_at)


def _ran_at(check_id: str) -> datetime | None:
    try:
        return datetime.strptime(check_id[:22], _CHECK_STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def check_results(store: ArtifactStore, model: str, version: int, since: datetime | None = None) -> list[CheckResult]:
    """The stored checks of a model version, oldest first; with ``since``, only those that ran from then on.

    The ids tell when each check ran, so checks older than ``since`` are not read at all.
    """
    prefix = checks_prefix(model, version)
    found = []
    for key in store.list(prefix):
        if not key.endswith("/result.json"):
            continue
        ran = _ran_at(key[len(prefix):].split("/", 1)[0])
        if since is not None and ran is not None and ran < since:
            continue
        check = check_from_record(json.loads(store.get_bytes(key)))
        if since is None or check.ran_at >= since:
            found.append(check)
    return sorted(found, key=lambda c: (c.ran_at, c.id))


@dataclass(frozen=True)
class WatchInputs:
    """Everything :func:`orchestrator.loop.decide.decide` needs besides the policy, the clock and the served model."""

    checks: list[CheckResult]
    retrains: list[Retrain]


def watch_inputs(store: ArtifactStore, target: str, served: Served, policy: DriftPolicy,
                 now: datetime) -> WatchInputs:
    """Read the served version's checks of the decision's windows, and the watch's retrains.

    Args:
        store: The store holding the checks and the loop's records.
        target: The watch's target (its endpoint, or its model).
        served: The version served (and since when).
        policy: The policy: its windows say how far back checks matter.
        now: The decision's time.
    """
    lookback = timedelta(seconds=policy.watch.every_s * policy.watch.windows)
    # A window ends before its check runs: checks that ran before the lookback judged windows outside it.
    since = now - lookback
    if served.since is not None:
        since = max(since, served.since)
    return WatchInputs(check_results(store, served.model, served.version, since), retrain_history(store, target))


def decide_from_store(store: ArtifactStore, target: str, served: Served, policy: DriftPolicy,
                      now: datetime) -> Decision:
    """:func:`orchestrator.loop.decide.decide` on what the store holds (nothing is recorded)."""
    inputs = watch_inputs(store, target, served, policy, now)
    return decide(policy, now, served, inputs.checks, inputs.retrains)
