"""The lineage of a watch's retrains, one step a line: the drift results that counted, the decision, the retrain's
run, the model version it registered, the comparison, the approval and the deploy; and, for ``runs show`` and
``model show``, the retrain that made a run or a model version.

Only reads: decisions, retrains and comparisons from ``monitoring/<target>/loop/``, checks from
``monitoring/<model>/<version>/checks/``, run records and the registry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.open import open_store
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.config import setting
from orchestrator.errors import ArtifactNotFound
from orchestrator.loop.decide import FAILED, PROMOTED, REJECTED, WAITING, Decision, Retrain
from orchestrator.loop.records import comparisons, decisions, load_retrain, retrain_history
from orchestrator.monitoring.keys import checks_prefix
from orchestrator.usecases.watch import records_store

DRIFT, DECISION, RUN, MODEL, COMPARISON, APPROVAL, DEPLOY = (
    "drift", "decision", "retrain run", "model version", "comparison", "approval", "deploy")


@dataclass(frozen=True)
class LineageStep:
    """One step of a retrain's lineage: what it was, when, the id to look it up by, and a sentence."""

    step: str
    at: str | None
    ref: str | None
    text: str

    def to_dict(self) -> dict:
        return asdict(self)


def _check(store: ArtifactStore, model: str, version: int, check_id: str) -> dict | None:
    key = f"{checks_prefix(model, version)}{check_id}/result.json"
    return json.loads(store.get_bytes(key)) if store.exists(key) else None


def _drift_step(store: ArtifactStore, decision: Decision) -> LineageStep:
    rows, reasons = [], []
    for check_id in decision.drifted_ids:
        record = _check(store, decision.model, decision.version, check_id)
        if record is not None:
            rows.append(f"{record['window'].get('rows', 0):,}")
            reasons += (record.get("result") or {}).get("reasons", [])[:1]
    why = f"; {reasons[0]}" if reasons else ""
    return LineageStep(DRIFT, None, ", ".join(decision.drifted_ids),
                       f"{len(decision.drifted_ids)} of {len(decision.check_ids)} windows of "
                       f"{decision.model}:{decision.version} drifted (rows {', '.join(rows) or '?'}){why}")


def _run_step(store: ArtifactStore, retrain: Retrain) -> LineageStep | None:
    run_id = retrain.details.get("run_id")
    if not run_id:
        return None
    try:
        record = load_record(store, run_id)
    except ArtifactNotFound:
        return LineageStep(RUN, None, run_id, "run record no longer in the store")
    boundaries = record.get("parameters", {}).get("split", {}).get("boundaries") or {}
    held = f", test partition from {boundaries['validation']} to {boundaries['test']}" if boundaries else ""
    return LineageStep(RUN, record.get("started_at"), run_id,
                       f"{record['status']} in {record.get('elapsed_s', '?')} s, as of "
                       f"{record.get('parameters', {}).get('as_of', '?')}{held}")


def _approval_step(retrain: Retrain) -> LineageStep | None:
    details = retrain.details
    if retrain.outcome == WAITING:
        where = f" (auto, handed over: {details['handed_over']})" if details.get("handed_over") else ""
        return LineageStep(APPROVAL, None, None, f"waiting: `dataops approve` or `dataops reject`{where}")
    if details.get("approval") == "auto" and retrain.outcome == PROMOTED:
        return LineageStep(APPROVAL, None, None, "auto (the policy's approval)")
    if details.get("approved"):
        return LineageStep(APPROVAL, details["approved"].get("at"), None, f"approved by {details['approved']['by']}")
    if details.get("rejected"):
        return LineageStep(APPROVAL, details["rejected"].get("at"), None, details.get("reason", "rejected"))
    return None


def _deploy_step(retrain: Retrain) -> LineageStep | None:
    deployed = retrain.details.get("deploy")
    if deployed:
        where = deployed.get("server") or ", ".join(deployed.get("nodes") or []) or "?"
        return LineageStep(DEPLOY, deployed.get("deployed_at"), f"{deployed['model']}:{deployed['version']}",
                           f"{deployed.get('status', 'succeeded')} on {where} in {deployed.get('seconds', '?')} s")
    if retrain.outcome == REJECTED:
        return LineageStep(DEPLOY, None, None, f"not deployed: {retrain.details.get('reason', 'rejected')}")
    if retrain.outcome == FAILED:
        return LineageStep(DEPLOY, None, None, f"not deployed: failed: {retrain.details.get('reason', '?')}")
    return None


def retrain_lineage(store: ArtifactStore, target: str, retrain: Retrain, decision: Decision | None,
                    compared: dict) -> list[LineageStep]:
    """The steps of one retrain, from the drift that caused it to its deploy (or why there was none)."""
    steps = []
    if decision is not None:
        steps.append(_drift_step(store, decision))
        steps.append(LineageStep(DECISION, decision.decided_at.isoformat(), decision.id,
                                 f"{decision.code}: {decision.reason}"))
    run = _run_step(store, retrain)
    if run is not None:
        steps.append(run)
    challenger = retrain.details.get("challenger")
    if challenger:
        steps.append(LineageStep(MODEL, None, challenger, f"registered by run {retrain.details.get('run_id')}"))
    comparison = compared.get(retrain.details.get("comparison"))
    if comparison is not None:
        steps.append(LineageStep(COMPARISON, None, comparison.id,
                                 f"{comparison.winner} wins ({comparison.code}): {comparison.reason}"))
    for step in (_approval_step(retrain), _deploy_step(retrain)):
        if step is not None:
            steps.append(step)
    return steps


def watch_history(target: str, store: str | None = None, limit: int | None = None) -> dict:
    """The lineage of every retrain of a watch (the newest ``limit`` when given), and its latest decision.

    Returns:
        ``{"target", "store", "retrains": [{"number", "outcome", "started", "finished", "steps": [...]}],
        "latest_decision": {...} | None}``.
    """
    artifact_store = records_store(target, store)
    made = {d.id: d for d in decisions(artifact_store, target)}
    compared = {c.id: c for c in comparisons(artifact_store, target)}
    retrains = retrain_history(artifact_store, target, limit)
    rows = []
    for retrain in retrains:
        steps = retrain_lineage(artifact_store, target, retrain, made.get(retrain.decision_id), compared)
        rows.append({"number": retrain.number, "outcome": retrain.outcome,
                     "started": retrain.started.isoformat(),
                     "finished": retrain.finished.isoformat() if retrain.finished else None,
                     "steps": [s.to_dict() for s in steps]})
    latest = max(made.values(), key=lambda d: (d.decided_at, d.id or "")) if made else None
    return {"target": target, "store": artifact_store.uri, "retrains": rows,
            "latest_decision": None if latest is None else {
                "id": latest.id, "at": latest.decided_at.isoformat(), "code": latest.code, "reason": latest.reason,
                "model": f"{latest.model}:{latest.version}"}}


def loop_mention(store: ArtifactStore, record: dict) -> str | None:
    """For ``runs show``: the retrain that started this run, its outcome and why; None for a run the loop did not
    start."""
    loop = record.get("parameters", {}).get("loop")
    if not isinstance(loop, dict) or "target" not in loop:
        return None
    try:
        retrain = load_retrain(store, loop["target"], int(loop["retrain"]))
    except (ArtifactNotFound, ValueError, KeyError):
        return f"retrain {loop.get('retrain')} of watch {loop['target']} (its record is gone)"
    why = retrain.details.get("reason") or retrain.details.get("code") or ""
    return (f"retrain {retrain.number} of watch {loop['target']} (decision {retrain.decision_id}): "
            f"{retrain.outcome}{': ' + why if why else ''} (`dataops watch history {loop['target']}`)")


def run_loop_mention(record: dict, store: str | None = None) -> str | None:
    """:func:`loop_mention` of a run record, with the store as ``dataops runs show`` names it."""
    if not isinstance(record.get("parameters", {}).get("loop"), dict):
        return None  # most runs: no store is opened for them
    return loop_mention(open_store(setting("store", store)), record)


def model_loop_mention(store: ArtifactStore, card: dict) -> str | None:
    """For ``model show``: the retrain whose run registered this version, if the loop made it."""
    run_id = card.get("lineage", {}).get("run_id")
    if not run_id:
        return None
    try:
        return loop_mention(store, load_record(store, run_id))
    except ArtifactNotFound:
        return None
