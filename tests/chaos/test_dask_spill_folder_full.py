"""A Dask worker whose spill folder is on a full disk: every result it tries to spill stays in memory (Dask logs the
failure on the worker), and the run completes with the same partitions, fingerprints and artifact sha256s as a
run on a worker with room. The run's two shuffles (a window step's, by entity, and the isolation proof's) are
task-based for that reason: a peer-to-peer shuffle writes its buffers to the same folder and fails the run."""

from __future__ import annotations

import logging
import os
import subprocess

import dask
import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster

from orchestrator.artifacts.local import LocalStore
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from tests.conftest import write
from tests.integration.pipeline.conftest import PIPELINE, make_shop
from tests.support.chaos_table import record as record_case

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SPILL_FAILED = "Spill to disk failed"


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs, filled to the last byte; unmounted afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        try:
            with open(mount / "filler", "wb") as out:
                while True:
                    out.write(bytes(1 << 16))
        except OSError:
            pass
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# The shop pipeline over several files (several partitions, so the window step shuffles rows by customer) with a
# window step: both shuffles of a run, the window's and the isolation proof's, meet the full folder.
WINDOWED = PIPELINE.replace("location: events.csv", "location: events\n    format: csv").replace(
    '  - derive: {{big: "amount > 100"}}\n',
    '  - derive: {{big: "amount > 100"}}\n'
    "  - window: {{by: [customer], order: ts, lag: {{amount: [1]}}, rolling: [{{column: amount, stats: [mean], rows: 3}}]}}\n")


def shop_in_parts(folder, parts: int = 4) -> None:
    """The shop's events cut into ``parts`` CSV files under ``events/``."""
    make_shop(folder, bad_rows=3)
    events = pd.read_csv(folder / "events.csv", dtype=str)
    (folder / "events").mkdir()
    for index, rows in enumerate(np.array_split(np.arange(len(events)), parts)):
        events.iloc[rows].to_csv(folder / "events" / f"part-{index}.csv", index=False)
    (folder / "events.csv").unlink()


def data_results(record: dict) -> dict:
    stages = record["stages"]
    return {"stages": {name: (s["rows_in"], s["rows_out"], s["outputs"][0]["sha256"]) for name, s in stages.items()},
            "partitions": stages["split"]["partitions"]}


def test_a_worker_whose_spill_folder_is_full_keeps_its_data_in_memory_and_the_run_is_unchanged(
        full_disk, tmp_path, dask_client, capfd):
    shop_in_parts(tmp_path)
    pipeline = load_pipeline(write(tmp_path / "pipeline.yaml", WINDOWED.format(max_bad=0.05, key="event_id")))
    assert any(step.window for step in pipeline.spec.features), "the case needs a window step"
    reference = run_pipeline(pipeline, LocalStore(tmp_path / "reference"), dask_client).record

    # A target of (almost) nothing: every result the worker keeps is spilled at once, or tried to be.
    spill_everything = {"distributed.worker.memory.target": 1e-9, "distributed.worker.memory.spill": False,
                        "distributed.worker.memory.pause": False, "distributed.worker.memory.terminate": False}
    with dask.config.set(spill_everything), LocalCluster(
            n_workers=1, threads_per_worker=2, processes=True, memory_limit="4GiB", local_directory=str(full_disk),
            host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        capfd.readouterr()
        record = run_pipeline(pipeline, LocalStore(tmp_path / "store"), client).record
        kept_on_disk = sum(client.run(lambda dask_worker: len(dask_worker.data.slow)).values())
        # The worker logs to the stderr it inherited (its log deque does not keep ``distributed.spill``).
        worker_stderr = capfd.readouterr().err

    same = data_results(record) == data_results(reference)
    record_case(
        "dask-spill-folder-full-local",
        component="Dask",
        fault="the worker's spill folder on a full disk (1 MiB tmpfs, filled) while every result it keeps is spilled, "
              "in a run that shuffles twice (a window step by entity, the isolation proof)",
        must_hold="the run completes with the same partitions, row fingerprints and artifact sha256s; the data "
                  "stays in memory",
        tries=1,
        held=int(record["status"] == "succeeded" and same and kept_on_disk == 0),
        outcomes={"completed, same results, data kept in memory": 1} if same and kept_on_disk == 0 else {"broken": 1},
        notes="Dask logs each refused spill on the worker (\"Spill to disk failed; keeping data in memory\", with "
              "the OSError) and goes on: the cost is memory, and a worker killed for memory is restarted by its "
              "nanny (the SIGKILL cases)",
    )
    assert SPILL_FAILED in worker_stderr, f"no spill was even tried, the case proves nothing: {worker_stderr[-2000:]}"
    assert kept_on_disk == 0
    assert record["status"] == "succeeded"
    assert data_results(record) == data_results(reference)
