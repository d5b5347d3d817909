"""The flights example with its artifact store on Swift, through the CLI as a user runs it: cache, run records,
lineage and the model registry all live in the container, and nothing else changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.artifacts.swift import SwiftStore
from orchestrator.registry import ModelRegistry

pytestmark = [pytest.mark.integration, pytest.mark.openstack]
DATAOPS = Path(sys.executable).with_name("dataops")


def dataops(*args: str, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ, OS_CLOUD=os.environ.get("OS_CLOUD", "dataops-ci"), DATAOPS_SWIFT_CACHE=str(cwd / "cache"))
    return subprocess.run([str(DATAOPS), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)


def test_dataops_run_with_a_swift_store_keeps_cache_runs_and_registry_in_the_container(flights_dir, swift_container, cloud):
    container = swift_container
    store_url = f"swift://{container}/flights"
    first = dataops("run", "pipeline.yaml", "--store", store_url, cwd=flights_dir)
    assert first.returncode == 0, first.stderr[-3000:]

    runs = json.loads(dataops("runs", "list", "--store", store_url, "--json", cwd=flights_dir).stdout)
    assert [r["status"] for r in runs] == ["succeeded"]
    store = SwiftStore(container, "flights", conn=cloud, cache_dir=flights_dir / "check-cache")
    record = json.loads(store.get_bytes(f"runs/{runs[0]['run_id']}/record.json"))
    assert record["store"] == store_url and record["metrics"]["roc_auc"] > record["metrics"]["baseline"]["roc_auc"]
    assert ModelRegistry(store).versions("flights-delay") == [1]
    # Nothing was written to a local store instead.
    assert not (flights_dir / ".dataops").exists()

    again = dataops("run", "pipeline.yaml", "--store", store_url, cwd=flights_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    runs = json.loads(dataops("runs", "list", "--store", store_url, "--json", cwd=flights_dir).stdout)
    assert len(runs) == 2  # newest last
    latest = json.loads(store.get_bytes(f"runs/{runs[-1]['run_id']}/record.json"))
    assert latest["run_id"] != record["run_id"]
    # Every stage is taken from the cache on Swift; registering again finds the same version.
    ran = {name for name, stage in latest["stages"].items() if stage["status"] == "ran"}
    assert ran == {"register"} and latest["stages"]["register"]["created"] is False
