"""``dataops schedule tick --loop``, the runner where systemd is not the service manager, as a real process ticking
a local store every 2 s: a schedule firing every minute runs its slot on a real Dask cluster; the first SIGTERM lets
the running slot finish and stops the loop (exit 0, one history record per slot); a second one abandons the slot,
which the next tick of another runner resumes at once; a tick that fails is reported and the loop goes on."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.scheduling.state import ScheduleState
from orchestrator.usecases.schedules import create_schedule
from orchestrator.usecases.tick_loop import next_tick_at
from tests.integration.pipeline.conftest import PIPELINE, make_shop
from tests.support.chaos_table import record

pytestmark = pytest.mark.integration

DATAOPS = [sys.executable, "-m", "orchestrator"]


class Runner:
    """A schedule firing every minute on a tiny shop pipeline whose features stage waits while ``hold`` exists."""

    def __init__(self, folder: Path, scheduler: str, run_deadline: str = "10m"):
        self.folder, self.store = folder, str(folder / "store")
        self.hold, self.reached = folder / "hold", folder / "reached"  # the features stage waits / has started
        shop = folder / "shop"
        shop.mkdir()
        make_shop(shop, rows=200)
        (shop / "waits.py").write_text(textwrap.dedent(f"""
            import time
            from pathlib import Path

            def features(frame):
                Path({str(self.reached)!r}).touch()
                deadline = time.monotonic() + 60
                while Path({str(self.hold)!r}).exists() and time.monotonic() < deadline:
                    time.sleep(0.1)
                return frame
        """))
        pipeline = textwrap.dedent(PIPELINE.format(max_bad=0.05, key="event_id")).lstrip()
        (shop / "pipeline.yaml").write_text(pipeline.replace('  - derive: {big: "amount > 100"}',
                                                             "  - function: waits:features"))
        (folder / "every-minute.yaml").write_text(textwrap.dedent(f"""
            name: every-minute
            pipeline: shop/pipeline.yaml
            cron: "* * * * *"
            run_deadline: {run_deadline}
            scheduler: {scheduler}
        """).lstrip())
        # Kept as if created a moment before this minute began: its slot is due at the loop's first tick.
        now = datetime.now(UTC)
        create_schedule(folder / "every-minute.yaml", self.store, now=now.replace(second=0, microsecond=0)
                        - timedelta(seconds=1))
        self.state = ScheduleState(LocalStore(self.store), "every-minute")

    def loop(self, runner: str, store: str | None = None) -> subprocess.Popen:
        self.log = open(self.folder / f"{runner}-{time.monotonic_ns()}.log", "w+")
        return subprocess.Popen([*DATAOPS, "schedule", "tick", "--loop", "--every", "2s", "--store",
                                 store or self.store, "--runner", runner], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=self.log)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def running_slot(self, process: subprocess.Popen, timeout: float = 75):
        """Wait until the loop has started a slot's run; return that slot's record."""
        return self.slot_with(process, "started", timeout)

    def slot_with(self, process: subprocess.Popen, status: str, timeout: float = 75):
        """Wait until a slot's record has ``status``; return that record."""
        deadline = time.monotonic() + timeout
        while True:
            found = [record for record in self.state.history() if record.status == status]
            if found:
                return found[0]
            assert process.poll() is None, f"the loop exited {process.returncode}: {self.output()}"
            assert time.monotonic() < deadline, f"no slot {status} within {timeout:.0f}s: {self.output()}"
            time.sleep(0.05)


@pytest.fixture
def runner(tmp_path, dask_client):
    made = Runner(tmp_path, dask_client.scheduler.address)
    yield made
    made.hold.unlink(missing_ok=True)
    if getattr(made, "log", None) is not None:
        made.log.close()


def stop(process: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return process.wait(timeout)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_first_sigterm_lets_the_running_slot_finish_then_the_loop_exits_0_with_one_record_per_slot(runner):
    runner.hold.write_text("")
    process = runner.loop("loop-1")
    slot = runner.running_slot(process).slot
    process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    assert process.poll() is None, "the loop stops after the running tick, not in the middle of its slot"
    runner.hold.unlink()
    assert stop(process) == 0, runner.output()
    assert "stopped by SIGTERM after 1 tick(s) as runner loop-1" in runner.output()
    assert "succeeded" in runner.output() and f"every-minute {slot}" in runner.output()

    history = runner.state.history()
    assert slot in [record.slot for record in history]
    assert [record.status for record in history if record.slot == slot] == ["succeeded"]
    for record in history:  # a slot the tick found with its predecessor is recorded, never run twice
        assert record.status in ("succeeded", "skipped") and len(record.attempts) <= 1
    store = LocalStore(runner.store)
    runs = [load_record(store, run_id) for run_id in list_run_ids(store)]
    assert sorted(run["parameters"]["as_of"] for run in runs) == sorted(
        record.slot for record in history if record.status == "succeeded")
    assert {run["status"] for run in runs} == {"succeeded"}
    (attempt,) = runner.state.record(datetime.fromisoformat(slot)).attempts
    assert attempt["runner"] == "loop-1" and attempt["outcome"] == "succeeded"


def test_a_second_sigterm_abandons_the_slot_which_the_next_tick_of_another_runner_resumes_at_once(runner):
    runner.hold.write_text("")
    process = runner.loop("loop-2")
    slot = runner.running_slot(process).slot
    process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert stop(process, timeout=30) == 128 + signal.SIGTERM, runner.output()
    assert f"abandoned  every-minute {slot} attempt 1: the next tick resumes it" in runner.output()
    record = runner.state.record(datetime.fromisoformat(slot))
    assert record.status == "due"
    assert [(a["runner"], a["outcome"]) for a in record.attempts] == [("loop-2", "lost")]

    runner.hold.unlink()  # the abandoned run's task on the cluster ends too
    # Its lease holds the slot for 10 minutes: resumed now only because the attempt was recorded lost.
    ticked = subprocess.run([*DATAOPS, "schedule", "tick", "--store", runner.store, "--runner", "other"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert ticked.returncode == 0, ticked.stderr
    record = runner.state.record(datetime.fromisoformat(slot))
    assert record.status == "succeeded"
    assert [(a["runner"], a["outcome"]) for a in record.attempts] == [("loop-2", "lost"), ("other", "succeeded")]


def test_a_run_hanging_past_its_run_deadline_is_stopped_recorded_failed_and_the_loop_goes_on(tmp_path, dask_client):
    runner = Runner(tmp_path, dask_client.scheduler.address, run_deadline="6s")
    runner.hold.write_text("")  # the features stage waits for it: the run hangs
    process = runner.loop("loop-deadline")
    try:
        failed = runner.slot_with(process, "failed", timeout=90)
        runner.hold.unlink()  # the task still waiting on the shared cluster ends too
        (attempt,) = failed.attempts
        assert attempt["outcome"] == "failed" and "ran past its run deadline of 6s and was stopped" in attempt["error"]
        started, finished = (datetime.fromisoformat(attempt[key]) for key in ("started_at", "finished_at"))
        assert timedelta(seconds=4) <= finished - started < timedelta(seconds=30)  # times are kept to the second
        time.sleep(2.5)  # at least one more tick
        assert process.poll() is None, "the loop goes on after a run stopped at its deadline"
        process.send_signal(signal.SIGTERM)
        assert stop(process) == 0, runner.output()
        assert re.search(r"stopped by SIGTERM after [2-9]\d* tick\(s\)", runner.output()), runner.output()
    finally:
        runner.hold.unlink(missing_ok=True)
        if process.poll() is None:
            process.kill()
        runner.log.close()


@pytest.mark.chaos
def test_a_loop_killed_during_a_run_and_restarted_as_the_same_runner_resumes_the_slot_at_its_first_tick(
        tmp_path, dask_client):
    """SIGKILL of the whole loop (as the OOM killer or a power cut would) while a slot runs, then the supervisor's
    restart under the same ``--runner``: the slot resumes at once, from the stage cache, with one history record."""
    tries, outcomes = 3, {"resumed at the first tick, one record": 0}
    for attempt_number in range(tries):
        (tmp_path / f"try-{attempt_number}").mkdir()
        runner = Runner(tmp_path / f"try-{attempt_number}", dask_client.scheduler.address)
        runner.hold.write_text("")
        process = runner.loop("host-a")
        slot = runner.running_slot(process).slot
        deadline = time.monotonic() + 60
        while not runner.reached.exists():  # killed in its features stage, once ingest and blend are done
            assert time.monotonic() < deadline and process.poll() is None, runner.output()
            time.sleep(0.05)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        runner.hold.unlink()
        restarted = runner.loop("host-a")
        try:
            done = runner.slot_with(restarted, "succeeded", timeout=90)
            restarted.send_signal(signal.SIGTERM)
            assert stop(restarted) == 0, runner.output()
        finally:
            if restarted.poll() is None:
                restarted.kill()
        assert done.slot == slot
        assert f"taken over  every-minute {slot} attempt 1" in runner.output()
        records = [record for record in runner.state.history() if record.slot == slot]
        assert len(records) == 1, "one history record for the slot, however many attempts"
        assert [(a["runner"], a["outcome"]) for a in records[0].attempts] == [("host-a", "lost"),
                                                                             ("host-a", "succeeded")]
        assert records[0].attempts[1].get("resumed") is True
        # The restarted loop may go on to the next minute's slot before SIGTERM reaches it: read this slot's run.
        run = load_record(LocalStore(runner.store), records[0].attempts[1]["run_id"])
        assert run["status"] == "succeeded"
        assert run["stages"]["ingest.events"]["status"] == "cached", "the killed attempt's stages are not redone"
        runner.log.close()
        outcomes["resumed at the first tick, one record"] += 1
    record(
        "schedule-runner-loop-killed-during-a-run", component="schedule runner",
        fault="SIGKILL of `schedule tick --loop` (and its children) while a slot runs, then a restart as the "
              "same runner",
        must_hold="the slot resumes at the restarted loop's first tick, from the stage cache, with one history "
                  "record (attempts: lost, succeeded)",
        tries=tries, held=outcomes["resumed at the first tick, one record"], outcomes=outcomes)


def test_a_failing_tick_is_reported_and_the_loop_goes_on_until_sigterm(tmp_path):
    with open(tmp_path / "loop.log", "w") as log:
        process = subprocess.Popen([*DATAOPS, "schedule", "tick", "--loop", "--every", "1s", "--store",
                                    "nowhere://x"], start_new_session=True, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while Path(log.name).read_text().count("tick failed, trying again") < 2:
        assert process.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert stop(process) == 0
    output = Path(log.name).read_text()
    assert "unknown artifact store 'nowhere://x'" in output
    failed = re.search(r"stopped by SIGTERM after 0 tick\(s\) as runner \S+, (\d+) failed", output)
    assert failed is not None and int(failed[1]) >= 2, output


def test_ticks_fall_on_the_multiples_of_the_interval_on_the_wall_clock():
    assert next_tick_at(125.3, 60) == 180
    assert next_tick_at(180.0, 60) == 240, "strictly after: a tick at a boundary waits for the next one"
    assert next_tick_at(1_800_000_007.5, 2) == 1_800_000_008
