"""Which of the slots a tick finds due are run, and which are recorded skipped or missed: pure, so every policy is
tested with a fake clock.

* A slot older than the schedule's ``starting_deadline`` is ``missed``, whatever the policy.
* A tick that finds one slot due runs it. One that finds several (the runner was off, or busy, across a slot)
  applies ``catchup``: ``skip`` runs none and waits for the next slot; ``latest`` runs the newest once; ``all`` runs
  them oldest first, at most ``max_catchup`` of the newest. Every slot not run is recorded, with the reason, so
  the history shows gaps instead of hiding them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from orchestrator.durations import format_duration
from orchestrator.scheduling.spec import CatchUp, ScheduleSpec
from orchestrator.scheduling.state import DUE, MISSED, SKIPPED, iso


@dataclass(frozen=True)
class SlotPlan:
    """What a tick does with one slot: ``due`` (run it), ``skipped`` or ``missed``, and why."""

    slot: datetime
    decision: str
    reason: str = ""


def plan_slots(slots: list[datetime], now: datetime, spec: ScheduleSpec, older: bool = False) -> list[SlotPlan]:
    """Decide the fate of the slots due since the last tick.

    Args:
        slots: The due slots, oldest first.
        now: The tick's time.
        spec: The schedule.
        older: Slots older than the first of ``slots`` were due too but left out (a very long outage).

    Returns:
        One plan per slot, oldest first.
    """
    deadline = spec.starting_deadline_s
    plans: dict[datetime, SlotPlan] = {}
    startable = []
    for slot in slots:
        if deadline is not None and (now - slot).total_seconds() > deadline:
            plans[slot] = SlotPlan(slot, MISSED, f"not started within the starting deadline of "
                                                 f"{format_duration(deadline)} (first considered at {iso(now)})")
        else:
            startable.append(slot)
    if len(slots) == 1 and not older:
        run = startable
    elif spec.catchup is CatchUp.skip:
        run = []
        for slot in startable:
            plans[slot] = SlotPlan(slot, SKIPPED, f"catch-up 'skip': {len(slots)} slots came due at once "
                                                 "(the runner was off or busy); waiting for the next slot")
    elif spec.catchup is CatchUp.latest:
        run = startable[-1:]
        for slot in startable[:-1]:
            plans[slot] = SlotPlan(slot, SKIPPED, f"catch-up 'latest': only the newest due slot runs "
                                                 f"({iso(startable[-1])})")
    else:
        run = startable[-spec.max_catchup:]
        for slot in startable[:-spec.max_catchup]:
            plans[slot] = SlotPlan(slot, SKIPPED, f"catch-up 'all': beyond max_catchup {spec.max_catchup} "
                                                 "(the newest slots run)")
    for slot in run:
        plans[slot] = SlotPlan(slot, DUE)
    return [plans[slot] for slot in slots]
