"""The watch's decision: from the policy, the clock, the recent drift checks and the retrain history, whether a
retrain starts now, and why (or why not), in one code a program reads and one sentence a person reads.

The rules, in the order they apply:

* only checks of the served version count, made since it was served: a window judged against an older reference
  says nothing about the model serving now (the loop would retrain again right after every promotion);
* the last ``watch.windows`` windows are the intervals of ``watch.every`` ending at ``now``; of several checks of
  one interval the newest counts, so re-running a check never counts one window twice;
* a window of fewer than ``min_rows`` rows (or judged ``insufficient_data``) never counts as drift, nor does an
  interval that nobody checked;
* a retrain needs ``watch.drifted`` drifted windows among them; then one retrain in flight blocks the next, a
  retrain that finished (whatever its outcome) starts a ``retrain.cooldown``, and ``retrain.max`` caps the retrains
  started in any period.

Pure: no store, no clock, no cloud; the same inputs always give the same decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from orchestrator.durations import format_duration
from orchestrator.monitoring.check import DRIFT, INSUFFICIENT, NO_DRIFT
from orchestrator.monitoring.policy import DriftPolicy

RETRAIN, NONE = "retrain", "none"

# Decision codes: why the decision is what it is.
NO_CHECKS = "no_checks"
NO_DRIFT_CODE = "no_drift"
INSUFFICIENT_DATA = "insufficient_data"
DRIFT_NOT_SUSTAINED = "drift_not_sustained"
RETRAIN_RUNNING = "retrain_running"
AWAITING_APPROVAL = "awaiting_approval"
COOLDOWN = "cooldown"
CAP_REACHED = "cap_reached"
RETRAIN_CODE = "retrain"
CODES = (NO_CHECKS, NO_DRIFT_CODE, INSUFFICIENT_DATA, DRIFT_NOT_SUSTAINED, RETRAIN_RUNNING, AWAITING_APPROVAL,
         COOLDOWN, CAP_REACHED, RETRAIN_CODE)

# A retrain's outcome: in flight (running; its challenger waiting for a person) or final.
RUNNING, WAITING = "running", "awaiting_approval"
PROMOTED, REJECTED, FAILED = "promoted", "rejected", "failed"
IN_FLIGHT = frozenset({RUNNING, WAITING})
OUTCOMES = (RUNNING, WAITING, PROMOTED, REJECTED, FAILED)


@dataclass(frozen=True)
class CheckResult:
    """One drift check, as the decision needs it.

    Attributes:
        id: The check's id (``monitoring/<model>/<version>/checks/<id>/``).
        window_end: The end of the window it judged.
        verdict: ``drift``, ``no_drift`` or ``insufficient_data``.
        rows: Rows in the window.
        version: The model version whose reference profile the window was held against.
        checked_at: When the check ran (default: the window's end).
    """

    id: str
    window_end: datetime
    verdict: str
    rows: int
    version: int
    checked_at: datetime | None = None

    @property
    def ran_at(self) -> datetime:
        return self.checked_at or self.window_end


@dataclass(frozen=True)
class Retrain:
    """One retrain the loop started, numbered from 1 in the order they started.

    Attributes:
        number: Its number (the next retrain claims the next number, create-only).
        started: When it started.
        finished: When it reached a final outcome; None while in flight.
        outcome: ``running`` or ``awaiting_approval`` (in flight); ``promoted``, ``rejected`` or ``failed``.
        decision_id: The decision that started it.
        details: What the use cases add: run id, challenger version, comparison id, reason.
    """

    number: int
    started: datetime
    finished: datetime | None
    outcome: str
    decision_id: str | None = None
    details: dict = field(default_factory=dict)

    @property
    def in_flight(self) -> bool:
        # A retrain without an end is in flight whatever its outcome says: one at a time errs on the safe side.
        return self.finished is None or self.outcome in IN_FLIGHT


@dataclass(frozen=True)
class Served:
    """The model version being served (whose reference the watch compares against), and since when."""

    model: str
    version: int
    since: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """What the watch decided at ``decided_at``, and why.

    Attributes:
        action: ``retrain`` or ``none``.
        code: One of ``CODES``.
        reason: The same, in a sentence.
        decided_at: The decision's ``now``.
        model: The model served.
        version: Its version: the reference the counted checks were held against.
        check_ids: Every check the decision counted, newest first (one per window).
        drifted_ids: Those of them that drifted.
        until: For ``cooldown`` and ``cap_reached``: when a retrain may start at the earliest.
        retrain: The number of the retrain this decision starts (``retrain``), or of the one in flight.
        figures: Every number of the policy the decision applied.
        id: Set when the decision is recorded.
    """

    action: str
    code: str
    reason: str
    decided_at: datetime
    model: str
    version: int
    check_ids: tuple[str, ...] = ()
    drifted_ids: tuple[str, ...] = ()
    until: datetime | None = None
    retrain: int | None = None
    figures: dict = field(default_factory=dict)
    id: str | None = None

    @property
    def retrains(self) -> bool:
        return self.action == RETRAIN


def _figures(policy: DriftPolicy) -> dict:
    watch, retrain = policy.watch, policy.retrain
    return {"min_rows": policy.min_rows, "windows": watch.windows, "drifted": watch.drifted,
            "every_s": watch.every_s, "cooldown_s": retrain.cooldown_s, "max_retrains": retrain.max_count,
            "max_period_s": retrain.max_period_s}


def counted_windows(policy: DriftPolicy, now: datetime, served: Served,
                    checks: Sequence[CheckResult]) -> list[CheckResult]:
    """The checks a decision at ``now`` counts: one per interval of the last ``watch.windows``, newest first.

    Args:
        policy: The policy (its ``watch`` section).
        now: The decision's time.
        served: The version served; checks of any other version, or made before ``served.since``, are left out.
        checks: Check results, in any order.

    Returns:
        At most ``watch.windows`` checks, the newest check of each interval that has one, newest interval first.
    """
    every = policy.watch.every_s
    start = now - timedelta(seconds=every * policy.watch.windows)
    newest: dict[int, CheckResult] = {}
    for check in checks:
        if check.version != served.version or not start < check.window_end <= now or check.ran_at > now:
            continue
        if served.since is not None and check.ran_at < served.since:
            continue
        interval = math.floor((now - check.window_end).total_seconds() / every)
        kept = newest.get(interval)
        if kept is None or (check.ran_at, check.id) > (kept.ran_at, kept.id):
            newest[interval] = check
    return [newest[i] for i in sorted(newest)]


def effective_verdict(policy: DriftPolicy, check: CheckResult) -> str:
    """A check's verdict as the loop counts it: below ``min_rows`` rows a window is insufficient, whatever the check
    said (it may have been made under another policy); anything but ``drift`` is not drift."""
    if check.verdict == INSUFFICIENT or check.rows < policy.min_rows:
        return INSUFFICIENT
    return DRIFT if check.verdict == DRIFT else NO_DRIFT


def _at(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%d %H:%M:%SZ")


def decide(policy: DriftPolicy, now: datetime, served: Served, checks: Sequence[CheckResult],
           retrains: Sequence[Retrain]) -> Decision:
    """Decide whether a retrain starts now.

    Args:
        policy: The model's policy (the pipeline file's ``monitoring:``): ``min_rows``, ``watch``, ``retrain``.
        now: The decision's time (aware).
        served: The model version served, and since when.
        checks: Recent check results (of any version: only the served version's count).
        retrains: The retrain history of this watch (every retrain in flight, and at least those started within
            ``retrain.max``'s period or finished within ``retrain.cooldown``).

    Returns:
        The decision, with the ids of the checks it counted and, when it does not retrain, why not.
    """
    k, m = policy.watch.drifted, policy.watch.windows
    counted = counted_windows(policy, now, served, checks)
    verdicts = {c.id: effective_verdict(policy, c) for c in counted}
    drifted = [c.id for c in counted if verdicts[c.id] == DRIFT]
    common = {"decided_at": now, "model": served.model, "version": served.version,
              "check_ids": tuple(c.id for c in counted), "drifted_ids": tuple(drifted), "figures": _figures(policy)}
    ref = f"{served.model}:{served.version}"
    windows = f"the last {m} window{'s' if m > 1 else ''} of {format_duration(policy.watch.every_s)}"
    unchecked = m - len(counted)
    gap = f" ({unchecked} not checked)" if unchecked and counted else ""

    if len(drifted) < k:
        if not counted:
            return Decision(NONE, NO_CHECKS, f"no check of {ref} in {windows}", **common)
        if drifted:
            return Decision(NONE, DRIFT_NOT_SUSTAINED, f"{len(drifted)} of {windows} drifted{gap}; a retrain needs "
                                                       f"{k}", **common)
        if verdicts[counted[0].id] == INSUFFICIENT:
            return Decision(NONE, INSUFFICIENT_DATA,
                            f"the newest window has {counted[0].rows:,} rows, fewer than the {policy.min_rows:,} a "
                            f"verdict needs, and none of {windows} drifted{gap}", **common)
        return Decision(NONE, NO_DRIFT_CODE, f"none of {windows} drifted{gap}", **common)

    sustained = f"{len(drifted)} of {windows} drifted (a retrain needs {k})"
    next_number = max((r.number for r in retrains), default=0) + 1
    in_flight = sorted((r for r in retrains if r.in_flight), key=lambda r: r.number)
    if in_flight:
        busy = in_flight[-1]
        if busy.outcome == WAITING:
            return Decision(NONE, AWAITING_APPROVAL, f"{sustained}, but the challenger of retrain {busy.number} "
                                                     f"waits for approval", retrain=busy.number, **common)
        return Decision(NONE, RETRAIN_RUNNING, f"{sustained}, but retrain {busy.number} (started "
                                               f"{_at(busy.started)}) is still running", retrain=busy.number,
                        **common)

    blocks = []
    finished = [r.finished for r in retrains if r.finished is not None]
    if finished:
        cooled = max(finished) + timedelta(seconds=policy.retrain.cooldown_s)
        if now < cooled:
            why = (f"the last retrain finished at {_at(max(finished))}: the cooldown of {policy.retrain.cooldown} "
                   f"lasts until {_at(cooled)}")
            blocks.append((cooled, COOLDOWN, why))
    period = timedelta(seconds=policy.retrain.max_period_s)
    recent = sorted(r.started for r in retrains if now - period < r.started <= now)
    cap = policy.retrain.max_count
    if len(recent) >= cap:
        # The cap frees when enough of the recent starts leave the period to bring them under it.
        freed = recent[len(recent) - cap] + period
        why = (f"{len(recent)} retrains started in the last {format_duration(period.total_seconds())} (at most "
               f"{policy.retrain.max}): the next may start at {_at(freed)}")
        blocks.append((freed, CAP_REACHED, why))
    if blocks:
        until, code, _ = max(blocks)
        because = "; ".join(why for _, _, why in sorted(blocks))
        return Decision(NONE, code, f"{sustained}, but {because}", until=until, **common)
    return Decision(RETRAIN, RETRAIN_CODE, f"{sustained}: retrain {next_number} of {ref}", retrain=next_number,
                    **common)
