"""What a tick runs, skips and records, on a fake clock: catch-up, starting deadline, concurrency, edits, pause
and resume, retries with backoff, auto-pause."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.state import ScheduleState
from orchestrator.scheduling.tick import SlotRunFailed


def statuses(state: ScheduleState) -> dict[str, str]:
    return {record.slot[11:16]: record.status for record in state.history()}


def test_a_due_slot_runs_once_and_a_second_tick_at_the_same_time_starts_nothing(keep, tick_at, recorder, at):
    state = keep()
    first = tick_at("01:00:10")
    assert recorder.slots == ["01:00"]
    assert [(o.slot, o.action) for o in first.outcomes] == [("2027-06-01T01:00:00Z", "succeeded")]
    again = tick_at("01:00:10")
    assert recorder.slots == ["01:00"], "a second tick at the same time must start nothing"
    assert again.started == []
    record = state.record(at("01:00:00"))
    assert record.status == "succeeded" and record.run_ids == ["run-0100-1"] and len(record.attempts) == 1


def test_a_new_schedule_does_not_run_the_slots_before_it_was_created(keep, tick_at, recorder):
    state = keep(created="03:30:00")
    tick_at("03:45:00")
    assert recorder.slots == [] and state.history() == []
    tick_at("04:00:05")
    assert recorder.slots == ["04:00"]


def test_catchup_latest_runs_the_newest_missed_slot_once_and_records_the_others_skipped(keep, tick_at, recorder, at):
    state = keep()
    tick_at("05:30:00")
    assert recorder.slots == ["05:00"]
    assert statuses(state) == {"01:00": "skipped", "02:00": "skipped", "03:00": "skipped", "04:00": "skipped",
                               "05:00": "succeeded"}
    assert "catch-up 'latest'" in state.record(at("02:00:00")).reason


def test_catchup_skip_runs_none_of_the_missed_slots_and_waits_for_the_next(keep, tick_at, recorder, at):
    state = keep(catchup="skip")
    tick_at("05:30:00")
    assert recorder.slots == []
    assert set(statuses(state).values()) == {"skipped"} and len(statuses(state)) == 5
    assert "waiting for the next slot" in state.record(at("05:00:00")).reason
    tick_at("06:00:20")
    assert recorder.slots == ["06:00"]


def test_catchup_all_runs_the_missed_slots_oldest_first_up_to_max_catchup(keep, tick_at, recorder, at):
    state = keep(catchup="all", max_catchup=3)
    tick_at("05:30:00")
    assert recorder.slots == ["03:00", "04:00", "05:00"]
    assert statuses(state)["01:00"] == statuses(state)["02:00"] == "skipped"
    assert "beyond max_catchup 3" in state.record(at("01:00:00")).reason


def test_a_slot_older_than_the_starting_deadline_is_missed_not_run(keep, tick_at, recorder, at):
    state = keep(starting_deadline="30m", catchup="all")
    tick_at("02:40:00")
    assert recorder.slots == []
    assert statuses(state) == {"01:00": "missed", "02:00": "missed"}
    assert "starting deadline of 30m" in state.record(at("02:00:00")).reason
    tick_at("03:10:00")
    assert recorder.slots == ["03:00"], "a slot 10 minutes late is within the 30m deadline"


def test_concurrency_forbid_skips_a_slot_whose_predecessor_still_runs(keep, tick_at, recorder, at):
    state = keep()
    seen = {}
    # While runner r1 runs 01:00, runner r2 ticks at 02:00 (the run outlasts its interval).
    recorder.during = lambda schedule, slot: seen.setdefault("r2", tick_at("02:00:10", runner="r2")) \
        if f"{slot:%H:%M}" == "01:00" else None
    tick_at("01:00:10")
    assert recorder.slots == ["01:00"]
    skipped = state.record(at("02:00:00"))
    assert skipped.status == "skipped"
    assert skipped.reason == "concurrency 'forbid': slot 2027-06-01T01:00:00Z is still running on r1"
    assert [o.action for o in seen["r2"].outcomes] == ["running", "skipped"]


def test_concurrency_allow_starts_a_slot_while_its_predecessor_runs(keep, tick_at, recorder):
    state = keep(concurrency="allow")
    recorder.during = lambda schedule, slot: tick_at("02:00:10", runner="r2") if f"{slot:%H:%M}" == "01:00" else None
    tick_at("01:00:10")
    assert recorder.slots == ["01:00", "02:00"]
    assert statuses(state) == {"01:00": "succeeded", "02:00": "succeeded"}


def test_a_schedule_edited_mid_run_starts_from_the_edit(keep, store, tick_at, recorder, at):
    state = keep()

    def edit(schedule, slot):
        if f"{slot:%H:%M}" == "01:00":
            spec = ScheduleSpec.model_validate({**schedule.spec.model_dump(mode="json"), "cron": "*/10 * * * *"})
            state.save(spec, "hourly.yaml", at("01:30:00"))

    recorder.during = edit
    tick_at("01:00:10")
    tick_at("01:40:05")
    assert recorder.slots == ["01:00", "01:40"], "no slot between the last tick and the edit is caught up"
    assert statuses(state) == {"01:00": "succeeded", "01:40": "succeeded"}
    assert state.load().created_at == at("00:00:00") and state.load().edited_at == at("01:30:00")


def test_a_resumed_schedule_does_not_catch_up_the_slots_it_was_paused_for(keep, store, tick_at, recorder, at):
    from orchestrator.usecases.schedules import pause_schedule, resume_schedule

    state = keep()
    tick_at("01:00:10")
    pause_schedule("hourly", store.uri, now=at("01:30:00"))
    assert tick_at("02:00:10").paused == ["hourly"]
    tick_at("03:00:10")
    resume_schedule("hourly", store.uri, now=at("03:30:00"))
    tick_at("04:00:10")
    assert recorder.slots == ["01:00", "04:00"]
    assert statuses(state) == {"01:00": "succeeded", "04:00": "succeeded"}


def test_a_failed_slot_is_retried_after_its_backoff_in_the_same_history_record(keep, tick_at, recorder, at):
    state = keep(retries={"max": 2, "backoff": ["10m", "30m"]})
    recorder.failures = [SlotRunFailed("stage 'train' failed", run_id="run-a")] * 3
    assert [o.action for o in tick_at("01:00:10").outcomes] == ["retrying"]
    record = state.record(at("01:00:00"))
    assert record.status == "due" and record.retry_at == "2027-06-01T01:10:10Z"
    assert [o.action for o in tick_at("01:05:00").outcomes] == ["waiting"]
    assert recorder.slots == ["01:00"]
    tick_at("01:10:30")
    assert state.record(at("01:00:00")).retry_at == "2027-06-01T01:40:30Z"
    final = tick_at("01:41:00")
    assert [o.action for o in final.outcomes] == ["failed"]
    assert recorder.slots == ["01:00"] * 3
    record = state.record(at("01:00:00"))
    assert record.status == "failed" and len(record.attempts) == 3 and "no retries left" in record.reason
    assert record.run_ids == ["run-a"] * 3
    assert len(state.history()) == 1


def test_a_retry_that_succeeds_ends_the_slot_succeeded(keep, tick_at, recorder, at):
    state = keep(retries={"max": 1, "backoff": "1m"})
    recorder.failures = [RuntimeError("scheduler connection lost")]
    tick_at("01:00:10")
    tick_at("01:01:20")
    record = state.record(at("01:00:00"))
    assert record.status == "succeeded"
    assert [a["outcome"] for a in record.attempts] == ["failed", "succeeded"]


def test_a_malformed_pipeline_is_not_retried(keep, tick_at, recorder, at):
    state = keep(retries={"max": 3})
    recorder.failures = [SpecError("pipeline.yaml:3: unknown field 'sorces'")]
    assert [o.action for o in tick_at("01:00:10").outcomes] == ["failed"]
    assert "not worth retrying" in state.record(at("01:00:00")).reason


def test_a_schedule_pauses_itself_after_n_slots_failed_in_a_row(keep, tick_at, recorder):
    state = keep(pause_after_failures=2)
    recorder.failures = [RuntimeError("boom")] * 5
    tick_at("01:00:10")
    assert not state.control().paused and state.control().consecutive_failures == 1
    tick_at("02:00:10")
    control = state.control()
    assert control.paused and control.consecutive_failures == 2
    assert control.paused_reason.startswith("paused after 2 slots failed in a row")
    assert tick_at("03:00:10").paused == ["hourly"]
    assert recorder.slots == ["01:00", "02:00"]


def test_a_success_resets_the_count_of_failures_in_a_row(keep, tick_at, recorder):
    state = keep(pause_after_failures=2)
    recorder.failures = [RuntimeError("boom")]
    tick_at("01:00:10")
    tick_at("02:00:10")
    assert state.control().consecutive_failures == 0
    recorder.failures = [RuntimeError("boom")]
    tick_at("03:00:10")
    assert not state.control().paused


def test_a_paused_schedule_starts_nothing_and_records_nothing(keep, store, tick_at, recorder, at):
    from orchestrator.usecases.schedules import pause_schedule

    state = keep()
    pause_schedule("hourly", store.uri, now=at("00:30:00"))
    tick_at("01:00:10")
    assert recorder.slots == [] and state.history() == []


@pytest.mark.parametrize("catchup", ["skip", "latest", "all"])
def test_a_slot_found_alone_runs_whatever_the_catchup_policy(keep, tick_at, recorder, catchup):
    keep(catchup=catchup)
    tick_at("01:20:00")
    assert recorder.slots == ["01:00"]


def test_backfill_runs_the_slots_that_did_not_succeed_and_leaves_the_others(keep, store, tick_at, recorder, at):
    from orchestrator.usecases.schedules import backfill

    state = keep()
    tick_at("04:30:00")  # catch-up latest: 04:00 runs, 01:00-03:00 are skipped
    recorder.failures = [RuntimeError("boom")]
    tick_at("05:00:10")  # 05:00 fails
    dry = backfill("hourly", at("01:00:00"), at("05:00:00"), store.uri, dry_run=True, runner="op", execute=recorder)
    assert [(o.slot[11:16], o.action) for o in dry] == [("01:00", "would-run"), ("02:00", "would-run"),
                                                        ("03:00", "would-run"), ("04:00", "already"),
                                                        ("05:00", "would-run")]
    assert recorder.slots == ["04:00", "05:00"], "a dry run runs nothing"
    done = backfill("hourly", at("01:00:00"), at("05:00:00"), store.uri, runner="op", execute=recorder)
    assert [o.action for o in done] == ["succeeded", "succeeded", "succeeded", "already", "succeeded"]
    assert recorder.slots == ["04:00", "05:00", "01:00", "02:00", "03:00", "05:00"]
    record = state.record(at("01:00:00"))
    assert record.status == "succeeded" and record.trigger == "backfill"
    assert [a["outcome"] for a in state.record(at("05:00:00")).attempts] == ["failed", "succeeded"]
    assert len(state.history()) == 5


def test_run_now_runs_one_slot_here_even_while_paused_and_once_only(keep, store, recorder, at):
    from orchestrator.usecases.schedules import pause_schedule, run_now

    state = keep()
    pause_schedule("hourly", store.uri, now=at("00:10:00"))
    outcome = run_now("hourly", store.uri, runner="laptop", execute=recorder, now=at("00:20:30"))
    assert (outcome.slot, outcome.action) == ("2027-06-01T00:20:30Z", "succeeded")
    again = run_now("hourly", store.uri, runner="laptop", execute=recorder, now=at("00:20:30"))
    assert again.action == "already" and recorder.slots == ["00:20"]
    assert state.record(at("00:20:30")).trigger == "manual"
