"""``dataops schedule tick-failed``: when the tick unit of a runner fails under a running slot (killed, out of memory,
past its time limit), its attempt is recorded lost at once, the schedule's failure hook (a real command here) is told
how the unit ended, and the next tick takes the slot over as a new attempt instead of waiting for the lease."""

from __future__ import annotations

import json
import sys

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.scheduling.runner_failure import UnitResult, fail_runner_attempts
from orchestrator.scheduling.tick import LOST_LIMIT

SYSTEMD_SAYS = {"MONITOR_SERVICE_RESULT": "timeout", "MONITOR_EXIT_CODE": "killed", "MONITOR_EXIT_STATUS": "TERM",
                "MONITOR_UNIT": "dataops-tick.service", "MONITOR_INVOCATION_ID": "0f3c9d"}


class Killed(BaseException):
    """The tick's process dies here (SIGKILL, the OOM killer): nothing after this point runs."""


def kill_the_run(schedule, slot):
    raise Killed()


@pytest.fixture
def hook_file(tmp_path):
    return tmp_path / "hook.jsonl"


@pytest.fixture
def command_hook(hook_file):
    """A failure hook command appending the summary it reads on stdin to a file, one JSON a line."""
    script = f"import sys; open({str(hook_file)!r}, 'a').write(sys.stdin.read() + '\\n')"
    return {"command": [sys.executable, "-c", script]}


def hooks_told(hook_file) -> list[dict]:
    return [json.loads(line) for line in hook_file.read_text().splitlines()] if hook_file.exists() else []


def test_a_killed_ticks_slot_is_recorded_lost_its_hook_is_told_and_the_next_tick_takes_it_over_at_once(
        keep, tick_at, recorder, store, at, command_hook, hook_file):
    state = keep(run_deadline="4h", on_failure=command_hook)
    recorder.during = kill_the_run
    with pytest.raises(Killed):
        tick_at("01:00:10", runner="host-a")
    recorder.during = None
    # The lease holds the slot for four hours: without tick-failed, another runner leaves it alone.
    (waiting,) = tick_at("01:02:00", runner="host-b").outcomes
    assert (waiting.action, waiting.attempt) == ("running", 1)

    result = CliRunner().invoke(app, ["schedule", "tick-failed", "--store", str(store.root), "--runner", "host-a"],
                                env=SYSTEMD_SAYS, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "runner host-a failed (dataops-tick.service: timeout (killed by TERM))" in result.stderr
    assert "lost  hourly 2027-06-01T01:00:00Z attempt 1: due; hook: command" in result.stderr

    record = state.record(at("01:00:00"))
    assert record.status == "due"
    (attempt,) = record.attempts
    assert attempt["outcome"] == "lost" and attempt["runner"] == "host-a"
    assert "dataops-tick.service: timeout (killed by TERM)" in attempt["error"]
    (told,) = hooks_told(hook_file)
    assert {key: told[key] for key in ("event", "schedule", "slot", "attempt", "runner", "status", "lost")} == {
        "event": "runner_failed", "schedule": "hourly", "slot": "2027-06-01T01:00:00Z", "attempt": 1,
        "runner": "host-a", "status": "due", "lost": 1}
    assert told["unit_result"] == {"service_result": "timeout", "exit_code": "killed", "exit_status": "TERM",
                                   "unit": "dataops-tick.service", "invocation_id": "0f3c9d"}
    assert record.hook == {"ok": True, "detail": f"command {sys.executable} exited 0"}

    (resumed,) = tick_at("01:03:00", runner="host-b").outcomes
    assert (resumed.slot, resumed.action, resumed.attempt) == ("2027-06-01T01:00:00Z", "succeeded", 2)
    history = state.history()
    assert len(history) == 1, "one record per slot, however many attempts"
    assert [(a["runner"], a["outcome"]) for a in history[0].attempts] == [("host-a", "lost"), ("host-b", "succeeded")]
    assert recorder.slots == ["01:00", "01:00"]


def test_tick_failed_leaves_the_slots_of_other_runners_and_finished_attempts_alone(keep, tick_at, recorder, store,
                                                                                 at, command_hook, hook_file):
    state = keep(on_failure=command_hook, concurrency="allow")
    tick_at("01:00:10", runner="host-a")  # succeeds
    recorder.during = kill_the_run
    with pytest.raises(Killed):
        tick_at("02:00:10", runner="host-b")

    report = fail_runner_attempts(store, "host-a", at("02:05:00"), UnitResult("oom-kill", "killed", "KILL"))
    assert report.lost == [] and report.errors == {}
    assert state.record(at("02:00:00")).status == "started", "host-b's run is none of host-a's business"
    assert state.record(at("01:00:00")).status == "succeeded"
    assert hooks_told(hook_file) == []

    (lost,) = fail_runner_attempts(store, "host-b", at("02:05:00"), UnitResult("oom-kill", "killed", "KILL")).lost
    assert (lost.slot, lost.attempt, lost.status) == ("2027-06-01T02:00:00Z", 1, "due")
    assert fail_runner_attempts(store, "host-b", at("02:06:00")).lost == [], "an attempt is recorded lost once"
    assert [told["unit_result"]["service_result"] for told in hooks_told(hook_file)] == ["oom-kill"]


def test_a_slot_whose_runner_is_lost_again_and_again_is_failed_for_good_counted_and_pauses_its_schedule(
        keep, tick_at, recorder, store, at, command_hook, hook_file):
    state = keep(on_failure=command_hook, pause_after_failures=1)
    recorder.during = kill_the_run
    statuses = []
    for attempt in range(1, LOST_LIMIT + 1):
        with pytest.raises(Killed):
            tick_at(f"01:{attempt:02d}:10", runner=f"host-{attempt}")
        (lost,) = fail_runner_attempts(store, f"host-{attempt}", at(f"01:{attempt:02d}:30"),
                                       UnitResult("oom-kill", "killed", "KILL")).lost
        statuses.append(lost.status)
    assert statuses == ["due"] * LOST_LIMIT
    # The next tick, of any runner, fails it for good rather than take it over a fourth time.
    assert [o.action for o in tick_at("01:09:00", runner="host-8").outcomes] == ["failed"]
    record = state.record(at("01:00:00"))
    assert record.status == "failed" and record.lost == LOST_LIMIT
    assert f"its runner was lost {LOST_LIMIT} times" in record.reason
    control = state.control()
    assert control.consecutive_failures == 1 and control.paused
    assert [(told["event"], told["status"]) for told in hooks_told(hook_file)] == \
        [("runner_failed", "due")] * LOST_LIMIT + [("slot_failed", "failed")]
    recorder.during = None
    assert tick_at("01:10:00", runner="host-9").outcomes == [], "a slot failed for good is not taken over again"
    assert len(recorder.calls) == LOST_LIMIT


def test_how_the_unit_ended_is_read_from_the_variables_systemd_gives_on_failure_units():
    result = UnitResult.from_environment(SYSTEMD_SAYS)
    assert result.describe() == "dataops-tick.service: timeout (killed by TERM)"
    exited = UnitResult.from_environment({"MONITOR_SERVICE_RESULT": "exit-code", "MONITOR_EXIT_CODE": "exited",
                                          "MONITOR_EXIT_STATUS": "1"})
    assert exited.describe() == "exit-code (exited 1)"
    assert UnitResult.from_environment({"PATH": "/usr/bin"}) is None


def test_tick_failed_exits_non_zero_when_a_hook_could_not_be_told(keep, tick_at, recorder, store):
    keep(on_failure={"command": [sys.executable, "-c", "import sys; sys.exit(3)"]})
    recorder.during = kill_the_run
    with pytest.raises(Killed):
        tick_at("01:00:10", runner="host-a")
    result = CliRunner().invoke(app, ["schedule", "tick-failed", "--store", str(store.root), "--runner", "host-a",
                                      "--json"], catch_exceptions=False)
    assert result.exit_code == 1
    (lost,) = json.loads(result.stdout)["lost"]
    assert lost["hook"]["ok"] is False and "exited 3" in lost["hook"]["detail"]
