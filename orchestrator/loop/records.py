"""The loop's records in the artifact store: every decision, every retrain it started, every comparison.

Layout, under ``monitoring/<target>/loop/`` (``<target>``: the watch's endpoint, or its model for batch scoring):

* ``decisions/<id>.json``: one per decision, ``retrain`` or not, with the check ids it counted (created once);
* ``retrains/<number>.json``: one per retrain, numbered from ``000001``. Creating it (create-only) is the right to
  start that retrain: a decision claims the number after the last retrain it saw, so two runners deciding at once
  on the same history start one retrain, never two. The holder then updates it as the retrain ends;
* ``comparisons/<id>.json``: champion against challenger, with every number used (created once).

``<id>`` is the record's UTC time (``20270328T013000.000000Z``) and a random suffix: ids sort as the records were
made. Every record is a JSON object with a ``format`` (``dataops.loop-decision/1`` and so on).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, replace
from datetime import UTC, datetime

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound, DataopsError
from orchestrator.loop.compare import Comparison
from orchestrator.loop.decide import IN_FLIGHT, OUTCOMES, RUNNING, Decision, Retrain
from orchestrator.scheduling.state import parse_instant

MONITORING = "monitoring"
DECISION_FORMAT = "dataops.loop-decision/1"
COMPARISON_FORMAT = "dataops.loop-comparison/1"
RETRAIN_FORMAT = "dataops.loop-retrain/1"
_TARGET = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class RetrainConflict(DataopsError):
    """A retrain record cannot move as asked: it is already final, or it is not the loop's to start."""

    exit_code = 28


def loop_prefix(target: str) -> str:
    """Where the loop of ``target`` keeps its records.

    Raises:
        ValueError: ``target`` is not a plain name (it would escape its folder).
    """
    if not _TARGET.fullmatch(target or "") or ".." in target:
        raise ValueError(f"invalid watch target {target!r}: expected a name of letters, digits, '.', '_' or '-'")
    return f"{MONITORING}/{target}/loop"


def iso(instant: datetime | None) -> str | None:
    """An aware instant in UTC, to the microsecond (``2027-03-28T01:30:00.000000Z``)."""
    return None if instant is None else instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def record_id(at: datetime) -> str:
    """A record's id: its UTC time in ISO 8601's basic form (ids sort as time does) and a random suffix."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ-") + secrets.token_hex(2)


def _json(data: dict) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode()


def _create(store: ArtifactStore, folder: str, at: datetime, data: dict) -> str:
    """Create a record under a fresh id (create-only: a record is never overwritten); return the id."""
    for _ in range(5):
        key_id = record_id(at)
        if store.put_if_absent(f"{folder}/{key_id}.json", _json({**data, "id": key_id})):
            return key_id
    raise DataopsError(f"could not create a record under {folder}: every id tried was taken")


def _read_all(store: ArtifactStore, folder: str, limit: int | None) -> list[dict]:
    keys = [k for k in store.list(f"{folder}/") if k.endswith(".json")]
    if limit is not None:
        keys = keys[-limit:] if limit > 0 else []
    return [json.loads(store.get_bytes(key)) for key in keys]


# ---- decisions ------------------------------------------------------------------------------------------------
def decision_to_dict(decision: Decision) -> dict:
    data = asdict(decision)
    data.update(format=DECISION_FORMAT, decided_at=iso(decision.decided_at), until=iso(decision.until),
                check_ids=list(decision.check_ids), drifted_ids=list(decision.drifted_ids))
    return data


def decision_from_dict(data: dict) -> Decision:
    return Decision(data["action"], data["code"], data["reason"], parse_instant(data["decided_at"]), data["model"],
                    int(data["version"]), tuple(data.get("check_ids", ())), tuple(data.get("drifted_ids", ())),
                    parse_instant(data.get("until")), data.get("retrain"), dict(data.get("figures", {})), data.get("id"))


def record_decision(store: ArtifactStore, target: str, decision: Decision) -> Decision:
    """Keep a decision (every decision, ``none`` included); return it with its id."""
    folder = f"{loop_prefix(target)}/decisions"
    return replace(decision, id=_create(store, folder, decision.decided_at, decision_to_dict(decision)))


def decisions(store: ArtifactStore, target: str, limit: int | None = None) -> list[Decision]:
    """The decisions kept for ``target``, oldest first (the newest ``limit`` when given)."""
    return [decision_from_dict(d) for d in _read_all(store, f"{loop_prefix(target)}/decisions", limit)]


def latest_decision(store: ArtifactStore, target: str) -> Decision | None:
    found = decisions(store, target, 1)
    return found[0] if found else None


# ---- comparisons ----------------------------------------------------------------------------------------------
def comparison_to_dict(comparison: Comparison, compared_at: datetime) -> dict:
    return {**comparison.to_dict(), "format": COMPARISON_FORMAT, "compared_at": iso(compared_at)}


def comparison_from_dict(data: dict) -> Comparison:
    known = {k: v for k, v in data.items() if k in Comparison.__dataclass_fields__}
    return Comparison(**known)


def record_comparison(store: ArtifactStore, target: str, comparison: Comparison, compared_at: datetime) -> Comparison:
    """Keep a comparison; return it with its id."""
    folder = f"{loop_prefix(target)}/comparisons"
    return replace(comparison, id=_create(store, folder, compared_at, comparison_to_dict(comparison, compared_at)))


def comparisons(store: ArtifactStore, target: str, limit: int | None = None) -> list[Comparison]:
    """The comparisons kept for ``target``, oldest first (the newest ``limit`` when given)."""
    return [comparison_from_dict(d) for d in _read_all(store, f"{loop_prefix(target)}/comparisons", limit)]


def latest_comparison(store: ArtifactStore, target: str) -> Comparison | None:
    found = comparisons(store, target, 1)
    return found[0] if found else None


# ---- retrains -------------------------------------------------------------------------------------------------
def _retrain_key(target: str, number: int) -> str:
    return f"{loop_prefix(target)}/retrains/{number:06d}.json"


def retrain_to_dict(retrain: Retrain) -> dict:
    return {"format": RETRAIN_FORMAT, "number": retrain.number, "started": iso(retrain.started),
            "finished": iso(retrain.finished), "outcome": retrain.outcome, "decision_id": retrain.decision_id,
            "details": retrain.details}


def retrain_from_dict(data: dict) -> Retrain:
    return Retrain(int(data["number"]), parse_instant(data["started"]), parse_instant(data.get("finished")), data["outcome"],
                   data.get("decision_id"), dict(data.get("details", {})))


def claim_retrain(store: ArtifactStore, target: str, decision: Decision, details: dict | None = None) -> Retrain | None:
    """Start the retrain a recorded ``retrain`` decision names, if no other runner started it first.

    Args:
        store: The store.
        target: The watch's target.
        decision: A recorded decision whose action is ``retrain``.
        details: What to keep with it from the start (the run id, for one).

    Returns:
        The retrain, ``running`` since the decision's time; None if its number was already taken (another runner
        decided on the same history first): nothing is to be started then.

    Raises:
        RetrainConflict: the decision is not a recorded ``retrain`` decision.
    """
    if not decision.retrains or decision.retrain is None or decision.id is None:
        raise RetrainConflict(f"decision {decision.id or '(not recorded)'} is {decision.code!r}: only a recorded "
                              f"retrain decision starts a retrain")
    retrain = Retrain(decision.retrain, decision.decided_at, None, RUNNING, decision.id, dict(details or {}))
    created = store.put_if_absent(_retrain_key(target, retrain.number), _json(retrain_to_dict(retrain)))
    return retrain if created else None


def load_retrain(store: ArtifactStore, target: str, number: int) -> Retrain:
    """One retrain.

    Raises:
        ArtifactNotFound: no such retrain.
    """
    try:
        return retrain_from_dict(json.loads(store.get_bytes(_retrain_key(target, number))))
    except ArtifactNotFound:
        raise ArtifactNotFound(f"no retrain {number} of {target} in {store.uri}") from None


def update_retrain(store: ArtifactStore, target: str, number: int, outcome: str, at: datetime,
                   **details) -> Retrain:
    """Move a retrain on: its challenger awaits approval, or it ended (``promoted``, ``rejected``, ``failed``).

    Only the runner holding the retrain (who claimed it) updates it.

    Args:
        store: The store.
        target: The watch's target.
        number: The retrain.
        outcome: ``awaiting_approval`` (still in flight), ``promoted``, ``rejected`` or ``failed``.
        at: When; a final outcome is the retrain's end, from which the cooldown runs.
        details: Added to the retrain's details (challenger version, comparison id, reason, ...).

    Returns:
        The retrain as now kept.

    Raises:
        ArtifactNotFound: no such retrain.
        RetrainConflict: it already ended.
        ValueError: ``outcome`` is not one of those above.
    """
    if outcome not in OUTCOMES or outcome == RUNNING:
        raise ValueError(f"a retrain moves on to one of {', '.join(o for o in OUTCOMES if o != RUNNING)}, "
                         f"not {outcome!r}")
    current = load_retrain(store, target, number)
    if not current.in_flight:
        raise RetrainConflict(f"retrain {number} of {target} already ended as {current.outcome} at "
                              f"{iso(current.finished)}")
    finished = None if outcome in IN_FLIGHT else at
    moved = replace(current, outcome=outcome, finished=finished, details={**current.details, **details})
    store.put_bytes(_retrain_key(target, number), _json(retrain_to_dict(moved)))
    return moved


def retrain_history(store: ArtifactStore, target: str, limit: int | None = None) -> list[Retrain]:
    """The retrains of ``target``, by number (the newest ``limit`` when given)."""
    return [retrain_from_dict(d) for d in _read_all(store, f"{loop_prefix(target)}/retrains", limit)]

