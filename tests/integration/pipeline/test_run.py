"""The pipeline runner on a real Dask cluster: quarantine, isolation, caching, resuming."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from orchestrator.artifacts.lineage import load_record
from orchestrator.errors import IsolationViolation, ValidationFailed
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline

pytestmark = pytest.mark.integration


def run(path, store, client, **kwargs):
    return run_pipeline(load_pipeline(path), store, client, **kwargs).record


def test_bad_rows_land_in_quarantine_with_their_reason_and_are_counted(shop, store, dask_client):
    record = run(shop(), store, dask_client)
    ingest = record["stages"]["ingest.events"]
    assert (ingest["rows_in"], ingest["rows_out"], ingest["quarantined"]) == (2000, 1997, 3)
    location = ingest["outputs"][0]["key"]
    quarantine = pd.read_parquet(store.dataset_path(location) / "quarantine")
    assert list(quarantine["_reason"]) == ["amount: expected float, got 'oops'"] * 3
    assert record["stages"]["split"]["rows_out"] == 1997


def test_too_many_bad_rows_fail_the_run_and_keep_the_quarantine(shop, store, dask_client):
    with pytest.raises(ValidationFailed, match=r"source 'events': 300 of 2,000 rows \(15.0%\) failed validation, more than max_bad_fraction 5.0%"):
        run(shop(bad_rows=300), store, dask_client)
    record = load_record(store, "latest")
    assert record["status"] == "failed"
    (kept,) = [a for a in record["artifacts"] if a["name"] == "ingest.events.quarantine"]
    assert len(pd.read_parquet(store.dataset_path(kept["key"]))) == 300


def test_a_split_that_puts_one_key_in_two_partitions_fails_the_run(shop, store, dask_client):
    # Customers buy all year round: splitting by time puts the same customer in train and test.
    with pytest.raises(IsolationViolation, match=r"split leaks data across partitions: \d+ key \['customer'\] value\(s\)"):
        run(shop(key="customer"), store, dask_client)


def test_the_record_lists_the_fingerprint_of_exactly_what_training_could_read(shop, store, dask_client):
    record = run(shop(), store, dask_client)
    partitions = record["stages"]["split"]["partitions"]
    assert sum(p["rows"] for p in partitions.values()) == 1997
    assert len({p["fingerprint"] for p in partitions.values()}) == 4


def test_an_unchanged_rerun_recomputes_nothing(shop, store, dask_client):
    path = shop()
    first = run(path, store, dask_client)
    assert {s["status"] for s in first["stages"].values()} == {"ran"}
    second = run(path, store, dask_client)
    assert {s["status"] for s in second["stages"].values()} == {"cached"}
    assert [s["key"] for s in second["stages"].values()] == [s["key"] for s in first["stages"].values()]


def test_changing_one_stage_recomputes_it_and_its_dependants_only(shop, store, dask_client):
    path = shop()
    run(path, store, dask_client)
    path.write_text(path.read_text().replace('"amount > 100"', '"amount > 150"'))
    record = run(path, store, dask_client)
    statuses = {name: stage["status"] for name, stage in record["stages"].items()}
    assert statuses == {"ingest.events": "cached", "ingest.customers": "cached", "blend": "cached",
                        "features": "ran", "split": "ran"}


def test_an_interrupted_run_resumes_from_the_last_completed_stage(shop, store, dask_client):
    path = shop()

    def interrupt_at_features(stage):
        if stage == "features":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(path, store, dask_client, stage_hook=interrupt_at_features)
    assert load_record(store, "latest")["status"] == "interrupted"
    assert not store.exists("cache/features") and not list(store.list("cache/features"))
    record = run(path, store, dask_client)
    statuses = {name: stage["status"] for name, stage in record["stages"].items()}
    assert statuses["blend"] == "cached" and statuses["features"] == "ran" and statuses["split"] == "ran"


def test_a_killed_process_leaves_no_partial_artifact_and_the_next_run_resumes(shop, tmp_path):
    path = shop()
    (tmp_path / "slow.py").write_text(
        "import os, time\n"
        "def features(frame):\n"
        "    if os.path.exists(os.environ['SLOW_MARKER']):\n"
        "        time.sleep(60)\n"
        "    return frame\n"
    )
    path.write_text(path.read_text().replace('  - derive: {big: "amount > 100"}', "  - function: slow:features"))
    marker = tmp_path / "slow-marker"
    marker.write_text("1")
    store_dir = tmp_path / "killed-store"
    env = {**os.environ, "SLOW_MARKER": str(marker)}
    command = [sys.executable, "-m", "orchestrator", "run", str(path), "--store", str(store_dir)]
    process = subprocess.Popen(command, env=env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not glob.glob(str(store_dir / "cache/blend/*/_manifest.json")):
        assert time.monotonic() < deadline and process.poll() is None, "the run never reached the blend stage"
        time.sleep(0.2)
    time.sleep(1.0)  # inside the slow features stage now
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not glob.glob(str(store_dir / "cache/features/*")), "a partial features output became visible"
    marker.unlink()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "cached ingest.events" in result.stderr and "done   features" in result.stderr
