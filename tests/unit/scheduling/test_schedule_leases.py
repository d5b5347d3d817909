"""Leases in the store: a create-only write decides each attempt at a slot, two runners never run a slot twice,
and the slot of a runner killed mid-run is taken over once its heartbeat stops (or, at the latest, at the run
deadline), keeping one history record."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from orchestrator.artifacts.local import LocalStore
from orchestrator.scheduling.state import ScheduleState
from orchestrator.scheduling.tick import LOST_LIMIT, ExecutionResult, tick


class Killed(BaseException):
    """The runner's process dies here: nothing after this point of the tick runs (as with SIGKILL)."""


def test_put_if_absent_creates_once_and_never_overwrites(tmp_path):
    store = LocalStore(tmp_path / "store")
    assert store.put_if_absent("schedules/a/leases/x/0001.json", b"first") is True
    assert store.put_if_absent("schedules/a/leases/x/0001.json", b"second") is False
    assert store.get_bytes("schedules/a/leases/x/0001.json") == b"first"
    assert list(store.list("schedules")) == ["schedules/a/leases/x/0001.json"], "no staged file is left behind"


def test_of_many_threads_racing_for_a_key_exactly_one_creates_it(tmp_path):
    store = LocalStore(tmp_path / "store")
    barrier = threading.Barrier(8)
    won = []

    def race(index: int) -> None:
        barrier.wait()
        if store.put_if_absent("lease", f"runner-{index}".encode()):
            won.append(index)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert store.get_bytes("lease") == f"runner-{won[0]}".encode()


def test_two_runners_ticking_the_same_store_at_once_never_run_a_slot_twice(store, keep, at):
    keep(cron="* * * * *", catchup="all", max_catchup=20, concurrency="allow")
    calls: list[str] = []
    lock = threading.Lock()

    def execute(schedule, slot):
        with lock:
            calls.append(f"{slot:%H:%M}")
        threading.Event().wait(0.01)  # a run takes a little while: the other runner ticks meanwhile
        return ExecutionResult()

    for minute in ("00:15:05", "00:30:05", "00:31:05"):
        barrier = threading.Barrier(2)

        def runner(name: str, when: str = minute, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            tick(store, at(when), name, execute)

        threads = [threading.Thread(target=runner, args=(name,)) for name in ("r1", "r2")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(calls) == len(set(calls)), f"slots run twice: {sorted(calls)}"
    history = ScheduleState(store, "hourly").history()
    assert len(history) == 31 and {r.status for r in history} <= {"succeeded", "skipped"}
    assert all(len(r.attempts) == 1 for r in history if r.status == "succeeded")
    assert sorted(calls) == sorted(r.slot[11:16] for r in history if r.status == "succeeded")


def test_without_heartbeats_a_killed_runners_slot_is_taken_over_at_the_run_deadline_with_one_history_record(
        store, keep, at):
    state = keep(run_deadline="30m")
    ran = []

    def dies(schedule, slot):
        ran.append("r1")
        raise Killed()

    def works(schedule, slot):
        ran.append("r2")
        return ExecutionResult(run_id="run-2")

    try:
        tick(store, at("01:00:10"), "r1", dies, heartbeat_s=None)
    except Killed:
        pass
    record = state.record(at("01:00:00"))
    assert record.status == "started" and record.attempts[0]["runner"] == "r1"
    before_expiry = tick(store, at("01:20:00"), "r2", works, heartbeat_s=None)
    assert [o.action for o in before_expiry.outcomes] == ["running"] and ran == ["r1"]
    after_expiry = tick(store, at("01:31:00"), "r2", works, heartbeat_s=None)
    assert [(o.action, o.attempt) for o in after_expiry.outcomes] == [("succeeded", 2)]
    assert ran == ["r1", "r2"]
    history = state.history()
    assert len(history) == 1
    record = history[0]
    assert record.status == "succeeded" and record.run_ids == ["run-2"]
    assert [(a["runner"], a["outcome"]) for a in record.attempts] == [("r1", "lost"), ("r2", "succeeded")]
    assert record.attempts[1]["resumed"] is True
    assert "lease expired at 2027-06-01T01:30:10Z" in record.attempts[0]["error"]
    assert [lease.runner for lease in state.leases(at("01:00:00"))] == ["r1", "r2"]


def test_a_slot_whose_runner_is_lost_again_and_again_is_failed(store, keep, at):
    state = keep(run_deadline="10m")

    def dies(schedule, slot):
        raise Killed()

    when = ["01:00:10", "01:11:00", "01:22:00"]
    for moment in when:
        try:
            tick(store, at(moment), "r", dies, heartbeat_s=None)
        except Killed:
            pass
    final = tick(store, at("01:33:00"), "r", dies, heartbeat_s=None)
    assert [o.action for o in final.outcomes] == ["failed"]
    record = state.record(at("01:00:00"))
    assert record.status == "failed" and record.lost == LOST_LIMIT
    assert f"lost {LOST_LIMIT} times" in record.reason


def test_a_slower_runners_stale_view_does_not_reset_a_finished_slot(store, keep, at, recorder):
    state = keep()
    tick(store, at("01:00:10"), "r1", recorder)
    # A runner whose clock is behind ticks at the same slot afterwards: the lease and the record stand.
    state.store.delete(f"{state.prefix}/cursor.json")
    tick(store, at("01:00:05"), "r2", recorder)
    assert recorder.slots == ["01:00"]
    assert state.record(at("01:00:00")).status == "succeeded"


def test_a_killed_runners_slot_is_taken_over_once_its_heartbeat_lapses_long_before_the_run_deadline(store, keep, at):
    state = keep(run_deadline="4h")

    def dies(schedule, slot):
        raise Killed()

    try:
        tick(store, at("01:00:10"), "r1", dies, heartbeat_s=120)
    except Killed:
        pass
    within = tick(store, at("01:01:30"), "r2", lambda schedule, slot: ExecutionResult(), heartbeat_s=120)
    assert [o.action for o in within.outcomes] == ["running"], "the last beat (01:00:10) holds until 01:02:10"
    taken_over = tick(store, at("01:02:30"), "r2", lambda schedule, slot: ExecutionResult(run_id="run-2"), heartbeat_s=120)
    assert [(o.action, o.attempt) for o in taken_over.outcomes] == [("succeeded", 2)]
    (record,) = state.history()
    assert [(a["runner"], a["outcome"]) for a in record.attempts] == [("r1", "lost"), ("r2", "succeeded")]
    assert "heartbeat stopped; the lease lapsed at 2027-06-01T01:02:10Z" in record.attempts[0]["error"]


def test_a_run_that_keeps_beating_holds_its_slot_past_one_heartbeat(store, keep, at):
    state = keep(run_deadline="4h")
    seen = {}

    def long_run(schedule, slot):
        # The run outlasts heartbeat periods (0.5 s each here); its runner's thread keeps the lease. Waited for,
        # not slept: on a busy machine the beating thread may be late.
        lease = state.leases(at("01:00:00"))[-1]
        first = state.lapses_at(lease)
        deadline = time.monotonic() + 20
        while state.lapses_at(lease) == first and time.monotonic() < deadline:
            threading.Event().wait(0.1)
        seen["first"], seen["lapses_at"] = first, state.lapses_at(lease)
        return ExecutionResult()

    start = at("01:00:10")
    tick(store, start, "r1", long_run, heartbeat_s=2)
    assert seen["lapses_at"] > seen["first"], "later beats moved the lapse time on"
    assert state.record(at("01:00:00")).status == "succeeded"


def test_a_heartbeat_never_extends_a_lease_past_its_run_deadline(store, keep, at):
    state = keep(run_deadline="10m")
    lease = state.take_lease(at("01:00:00"), 1, "r1", "run", at("01:00:10"), 600)
    state.beat(lease, at("05:00:00"))
    assert state.lapses_at(lease) == at("01:10:10")
