"""Schedules, their history and their leases, kept in the artifact store so that any runner (or operator) holding
the store sees the same truth and a replaced runner carries on where the last one stopped.

Layout, under ``schedules/<name>/``:

* ``schedule.json``: the validated spec (JSON), the file it came from, when it was created and last edited;
* ``control.json``: the pause flag (and why, since when, when last resumed) and the count of slots failed in a row;
* ``cursor.json``: up to when the ticks have considered slots;
* ``slots/<slot>.json``: one history record per slot (``<slot>`` is its UTC time, ``20270328T013000Z``);
* ``open/<slot>``: a marker for each slot not yet finished (due, retrying or running), so ticks find them quickly;
* ``leases/<slot>/<attempt>.json``: created only once each (``put_if_absent``): whoever creates a slot's lease
  decides that attempt of it, to run it or to record it skipped or missed, so two runners never start the same
  slot. A run's lease expires after the schedule's run deadline; a later tick takes an expired one over by creating
  the next attempt's lease, and the slot keeps its one history record;
* ``leases/<slot>/<attempt>.beat``: the running holder's heartbeat, rewritten while it runs: a run lease lapses
  when its heartbeat stops (a killed runner's slot is taken over within minutes), or at its deadline at the latest.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.errors import ArtifactNotFound, DataopsError
from orchestrator.scheduling.spec import ScheduleSpec

PREFIX = "schedules"

# A slot's history record moves through these; the last four are final.
DUE, STARTED, SUCCEEDED, FAILED, SKIPPED, MISSED = "due", "started", "succeeded", "failed", "skipped", "missed"
FINAL = frozenset({SUCCEEDED, FAILED, SKIPPED, MISSED})


class ScheduleNotFound(DataopsError):
    """No schedule under the given name in the store."""

    exit_code = 22


def iso(instant: datetime | None) -> str | None:
    """An instant as ISO 8601 in UTC, to the second (``2027-03-28T01:30:00Z``)."""
    if instant is None:
        return None
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant(text: str | None) -> datetime | None:
    """Read an instant written by :func:`iso` (or any ISO 8601 text with a zone; a bare one is taken as UTC)."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def slot_id(slot: datetime) -> str:
    """A slot's name in keys: its UTC time in ISO 8601's basic form, which sorts as time does."""
    return slot.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def slot_from_id(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _json(data) -> bytes:
    return json.dumps(data, indent=1, sort_keys=True).encode()


@dataclass(frozen=True)
class Schedule:
    """A schedule as kept in the store."""

    spec: ScheduleSpec
    source: str
    created_at: datetime
    edited_at: datetime

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Control:
    """What operators (and auto-pause) change about a schedule while it is kept."""

    paused: bool = False
    paused_at: datetime | None = None
    paused_reason: str = ""
    resumed_at: datetime | None = None
    consecutive_failures: int = 0

    def to_dict(self) -> dict:
        return {"paused": self.paused, "paused_at": iso(self.paused_at), "paused_reason": self.paused_reason,
                "resumed_at": iso(self.resumed_at), "consecutive_failures": self.consecutive_failures}

    @classmethod
    def from_dict(cls, data: dict) -> Control:
        return cls(bool(data.get("paused")), parse_instant(data.get("paused_at")), data.get("paused_reason", ""),
                   parse_instant(data.get("resumed_at")), int(data.get("consecutive_failures", 0)))


@dataclass(frozen=True)
class Lease:
    """The right to one attempt at a slot: to run it (until ``expires_at``), or to record it as ``decision``."""

    schedule: str
    slot: str
    attempt: int
    runner: str
    decision: str  # "run", or the final status it records: skipped, missed, failed
    taken_at: str
    expires_at: str | None
    token: str = field(default_factory=lambda: secrets.token_hex(8))

    def live(self, now: datetime) -> bool:
        """Whether the lease still holds its slot at ``now`` (a decision to record never expires)."""
        return self.expires_at is None or parse_instant(self.expires_at) > now


@dataclass
class SlotRecord:
    """The history of one slot: one record, however many attempts and runners it took."""

    schedule: str
    slot: str
    status: str
    trigger: str = "cron"  # cron, manual (run-now) or backfill
    reason: str = ""
    recorded_at: str | None = None
    retry_at: str | None = None
    # Each attempt: {attempt, runner, started_at, finished_at, outcome, run_id, error}.
    attempts: list[dict] = field(default_factory=list)
    hook: dict | None = None

    @property
    def run_ids(self) -> list[str]:
        return [a["run_id"] for a in self.attempts if a.get("run_id")]

    @property
    def failures(self) -> int:
        return sum(1 for a in self.attempts if a.get("outcome") == FAILED)

    @property
    def lost(self) -> int:
        return sum(1 for a in self.attempts if a.get("outcome") == "lost")

    def attempt(self, number: int) -> dict | None:
        return next((a for a in self.attempts if a["attempt"] == number), None)

    def to_dict(self) -> dict:
        return {**asdict(self), "run_ids": self.run_ids}

    @classmethod
    def from_dict(cls, data: dict) -> SlotRecord:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def schedule_names(store: ArtifactStore) -> list[str]:
    """Names of every schedule kept in ``store``, sorted."""
    return sorted({key.split("/")[1] for key in store.list(PREFIX) if key.endswith("/schedule.json")
                   and key.count("/") == 2})


class ScheduleState:
    """One schedule's objects in the store.

    Args:
        store: The artifact store the schedule is kept in.
        name: The schedule's name.
    """

    def __init__(self, store: ArtifactStore, name: str):
        self.store = store
        self.name = name
        self.prefix = f"{PREFIX}/{name}"

    # --- the schedule ------------------------------------------------------------------------------

    def exists(self) -> bool:
        return self.store.exists(f"{self.prefix}/schedule.json")

    def load(self) -> Schedule:
        """The schedule.

        Raises:
            ScheduleNotFound: No such schedule; the message names the ones the store keeps.
        """
        try:
            data = json.loads(self.store.get_bytes(f"{self.prefix}/schedule.json"))
        except ArtifactNotFound:
            known = schedule_names(self.store)
            from orchestrator.yaml_files import suggest

            raise ScheduleNotFound(f"no schedule {self.name!r} in {self.store.uri}{suggest(self.name, known)}; "
                                   f"schedules: {', '.join(known) or 'none'}") from None
        return Schedule(ScheduleSpec.model_validate(data["spec"]), data["source"],
                        parse_instant(data["created_at"]), parse_instant(data["edited_at"]))

    def save(self, spec: ScheduleSpec, source: str, now: datetime, pipeline_digest: str | None = None) -> str:
        """Keep ``spec`` as this schedule: created, or edited when it (or the pipeline's files, by their digest)
        differs from the one kept.

        Creating or editing starts the schedule from ``now``: no slot before it is run or recorded.

        Returns:
            ``created``, ``updated`` or ``unchanged``.
        """
        created_at, outcome = now, "created"
        if self.exists():
            kept = self.load()
            if kept.spec == spec and kept.source == source and self._pipeline_digest() == pipeline_digest:
                return "unchanged"
            created_at, outcome = kept.created_at, "updated"
        self.store.put_bytes(f"{self.prefix}/schedule.json", _json({
            "spec": spec.model_dump(mode="json"), "source": source, "created_at": iso(created_at),
            "edited_at": iso(now), "pipeline_digest": pipeline_digest,
        }))
        return outcome

    def _pipeline_digest(self) -> str | None:
        return json.loads(self.store.get_bytes(f"{self.prefix}/schedule.json")).get("pipeline_digest")

    def delete(self) -> int:
        """Remove the schedule with its history and leases; return how many objects were removed."""
        keys = list(self.store.list(self.prefix))
        # The schedule itself first: a tick running meanwhile no longer sees it.
        keys.sort(key=lambda key: not key.endswith("/schedule.json"))
        for key in keys:
            self.store.delete(key)
        return len(keys)

    # --- control and cursor ------------------------------------------------------------------------

    def control(self) -> Control:
        try:
            return Control.from_dict(json.loads(self.store.get_bytes(f"{self.prefix}/control.json")))
        except ArtifactNotFound:
            return Control()

    def save_control(self, control: Control) -> None:
        self.store.put_bytes(f"{self.prefix}/control.json", _json(control.to_dict()))

    def cursor(self) -> datetime | None:
        """Up to when slots have been considered (None before the first tick)."""
        try:
            return parse_instant(json.loads(self.store.get_bytes(f"{self.prefix}/cursor.json"))["considered_until"])
        except ArtifactNotFound:
            return None

    def advance_cursor(self, until: datetime, runner: str) -> None:
        """Move the cursor forward to ``until`` (never back: a slower runner's older tick leaves it)."""
        current = self.cursor()
        if current is None or until > current:
            self.store.put_bytes(f"{self.prefix}/cursor.json",
                                 _json({"considered_until": iso(until), "runner": runner}))

    # --- slots ---------------------------------------------------------------------------------------

    def _slot_key(self, slot: datetime) -> str:
        return f"{self.prefix}/slots/{slot_id(slot)}.json"

    def record(self, slot: datetime) -> SlotRecord | None:
        try:
            return SlotRecord.from_dict(json.loads(self.store.get_bytes(self._slot_key(slot))))
        except ArtifactNotFound:
            return None

    def save_record(self, record: SlotRecord) -> None:
        self.store.put_bytes(self._slot_key(parse_instant(record.slot)), _json(record.to_dict()))

    def create_record(self, record: SlotRecord) -> bool:
        """Write a slot's first record unless it has one (a slower runner never resets a slot another moved on)."""
        return self.store.put_if_absent(self._slot_key(parse_instant(record.slot)), _json(record.to_dict()))

    def history(self, limit: int | None = None) -> list[SlotRecord]:
        """Slot records, oldest first; with ``limit``, only the newest ones."""
        keys = [k for k in self.store.list(f"{self.prefix}/slots") if k.endswith(".json")]
        keys = keys[-limit:] if limit else keys
        return [SlotRecord.from_dict(json.loads(self.store.get_bytes(key))) for key in keys]

    def open_slots(self) -> list[datetime]:
        """Slots not yet finished, oldest first."""
        return [slot_from_id(key.rsplit("/", 1)[1]) for key in self.store.list(f"{self.prefix}/open")]

    def mark_open(self, slot: datetime) -> None:
        self.store.put_bytes(f"{self.prefix}/open/{slot_id(slot)}", b"")

    def mark_closed(self, slot: datetime) -> None:
        self.store.delete(f"{self.prefix}/open/{slot_id(slot)}")

    # --- leases --------------------------------------------------------------------------------------

    def leases(self, slot: datetime) -> list[Lease]:
        """The slot's leases, by attempt."""
        found = []
        for key in self.store.list(f"{self.prefix}/leases/{slot_id(slot)}"):
            if key.endswith(".json"):  # not the heartbeats beside them
                found.append(Lease(**json.loads(self.store.get_bytes(key))))
        return sorted(found, key=lambda lease: lease.attempt)

    def _beat_key(self, lease: Lease) -> str:
        return f"{self.prefix}/leases/{slot_id(parse_instant(lease.slot))}/{lease.attempt:04d}.beat"

    def beat(self, lease: Lease, until: datetime) -> None:
        """Say that the run holding ``lease`` is alive and holds its slot until ``until`` (never past the lease's
        own deadline). Unlike the lease, a heartbeat is overwritten: only its holder writes it."""
        if lease.expires_at is not None:
            until = min(until, parse_instant(lease.expires_at))
        self.store.put_bytes(self._beat_key(lease), _json({"runner": lease.runner, "token": lease.token,
                                                            "until": iso(until)}))

    def heartbeat_until(self, lease: Lease) -> datetime | None:
        """Until when the last heartbeat of ``lease``'s holder holds the slot; None if it never beat."""
        try:
            data = json.loads(self.store.get_bytes(self._beat_key(lease)))
        except ArtifactNotFound:
            return None
        return parse_instant(data["until"]) if data.get("token") == lease.token else None

    def lapses_at(self, lease: Lease) -> datetime | None:
        """When ``lease`` stops holding its slot: its deadline, or earlier once its holder's heartbeat stopped;
        None for a decision, which never lapses."""
        if lease.expires_at is None:
            return None
        beat = self.heartbeat_until(lease)
        deadline = parse_instant(lease.expires_at)
        return deadline if beat is None else min(beat, deadline)

    def take_lease(self, slot: datetime, attempt: int, runner: str, decision: str, now: datetime,
                   duration_s: float | None) -> Lease | None:
        """Create the lease of ``attempt`` at ``slot``; None if another runner created it first.

        Args:
            slot: The slot.
            attempt: The attempt it is for (1 for the first; a take-over is the next number).
            runner: Who takes it.
            decision: ``run``, or the final status the lease lets its holder record.
            now: When it is taken.
            duration_s: How long a run lease holds the slot; None for a decision that never expires.
        """
        expires = iso(now + timedelta(seconds=duration_s)) if duration_s is not None else None
        lease = Lease(self.name, iso(slot), attempt, runner, decision, iso(now), expires)
        key = f"{self.prefix}/leases/{slot_id(slot)}/{attempt:04d}.json"
        return lease if self.store.put_if_absent(key, _json(asdict(lease))) else None
