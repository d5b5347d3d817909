"""A run recorded as running whose process died reads as interrupted: at once on the same host (the process is gone,
or its pid belongs to another process now), after its heartbeat has gone stale on another host."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import psutil

from orchestrator.artifacts.lineage import load_record, record_key, save_record
from orchestrator.artifacts.run_liveness import STALE_S, RunHeartbeat, heartbeat_key, observed_status, this_process

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)


def running(process: dict, run_id: str = "20270301-115500-0a0b0c0d") -> dict:
    return {"run_id": run_id, "status": "running", "started_at": "2027-03-01T11:55:00Z", "process": process}


def a_finished_process() -> dict:
    """The host, pid and start time of a real process that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    started = psutil.Process(child.pid).create_time()
    child.wait()
    return {**this_process(), "pid": child.pid, "started": started}


def test_a_run_whose_process_is_alive_reads_as_running(store):
    record = running(this_process())
    assert observed_status(record, store) is record


def test_a_run_whose_process_exited_reads_as_interrupted_at_once_saying_why(store):
    process = a_finished_process()
    seen = observed_status(running(process), store)
    assert seen["status"] == "interrupted"
    assert seen["status_reason"] == f"process {process['pid']} on {process['host']} is gone"


def test_a_pid_now_held_by_another_process_is_not_taken_for_the_run(store):
    # This process's pid, but a start time an hour earlier: the run's process was another one, which is gone.
    process = {**this_process(), "started": this_process()["started"] - 3600}
    assert observed_status(running(process), store)["status"] == "interrupted"


def test_on_another_host_a_fresh_heartbeat_says_running_and_a_stale_one_interrupted(store):
    record = running({"host": "worker-7.example", "pid": 4242, "started": 1.0})
    store.put_bytes(heartbeat_key(record["run_id"]), json.dumps({"at": "2027-03-01T11:59:00Z"}).encode())
    assert observed_status(record, store, now=NOW)["status"] == "running"
    later = NOW + timedelta(seconds=STALE_S)
    seen = observed_status(record, store, now=later)
    assert seen["status"] == "interrupted"
    assert seen["status_reason"] == ("process 4242 on worker-7.example last beat at 2027-03-01T11:59:00Z, 180 s ago "
                                     "(more than 120 s)")


def test_on_another_host_a_run_that_never_beat_is_interrupted_once_its_start_is_stale(store):
    record = running({"host": "worker-7.example", "pid": 4242, "started": 1.0})
    assert observed_status(record, store, now=datetime(2027, 3, 1, 11, 56, tzinfo=timezone.utc))["status"] == "running"
    assert observed_status(record, store, now=NOW)["status"] == "interrupted"


def test_finished_runs_and_records_that_do_not_name_their_process_are_shown_as_saved(store):
    assert observed_status({**running(a_finished_process()), "status": "failed"}, store)["status"] == "failed"
    old = {"run_id": "20250101-000000", "status": "running", "started_at": "2025-01-01T00:00:00Z"}
    assert observed_status(old, store) is old


def test_reading_a_record_shows_the_observed_status_and_leaves_the_saved_record_alone(store):
    record = running(a_finished_process())
    save_record(store, record)
    assert load_record(store, record["run_id"])["status"] == "interrupted"
    assert json.loads(store.get_bytes(record_key(record["run_id"])))["status"] == "running"


def test_the_heartbeat_is_rewritten_while_it_runs_and_not_after_it_stops(store):
    heartbeat = RunHeartbeat(store, "run-1", every_s=0.05).start()
    first = json.loads(store.get_bytes(heartbeat_key("run-1")))
    assert first["pid"] == os.getpid()
    time.sleep(1.2)  # the beat's time has a resolution of one second
    heartbeat.stop()
    last = store.get_bytes(heartbeat_key("run-1"))
    assert json.loads(last)["at"] > first["at"]
    time.sleep(0.2)
    assert store.get_bytes(heartbeat_key("run-1")) == last

