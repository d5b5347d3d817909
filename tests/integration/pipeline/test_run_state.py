"""What a store says of its runs is true: a run whose process was killed is listed as interrupted as soon as it is
dead, not as running forever, and runs leave no empty folders behind in the store's staging area."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline

pytestmark = pytest.mark.integration


def runs(store_dir) -> list[dict]:
    result = CliRunner().invoke(app, ["runs", "list", "--store", str(store_dir), "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_killed_run_is_listed_as_interrupted_at_once(shop, tmp_path):
    path = shop()
    (tmp_path / "hang.py").write_text("import time\n\ndef features(frame):\n    time.sleep(120)\n    return frame\n")
    path.write_text(path.read_text().replace('  - derive: {big: "amount > 100"}', "  - function: hang:features"))
    store_dir = tmp_path / "store"
    process = subprocess.Popen([sys.executable, "-m", "orchestrator", "run", str(path), "--store", str(store_dir)],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (store_dir / "cache" / "blend").exists():  # the features stage hangs next
        assert time.monotonic() < deadline and process.poll() is None, "the run never reached the features stage"
        time.sleep(0.2)
    (listed,) = runs(store_dir)
    assert listed["status"] == "running"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()

    (listed,) = runs(store_dir)
    assert listed["status"] == "interrupted"
    shown = CliRunner().invoke(app, ["runs", "show", listed["run_id"], "--store", str(store_dir)])
    assert f"interrupted: process {process.pid} on " in shown.stdout and " is gone" in shown.stdout


def test_runs_leave_no_empty_folder_in_the_staging_area(shop, store, dask_client):
    path = shop()
    run_pipeline(load_pipeline(path), store, dask_client)
    path.write_text(path.read_text().replace('"amount > 100"', '"amount > 150"'))
    run_pipeline(load_pipeline(path), store, dask_client)
    staging = store.root / ".staging"
    empty = [entry.name for entry in staging.iterdir() if entry.is_dir() and not any(entry.iterdir())]
    assert empty == []
