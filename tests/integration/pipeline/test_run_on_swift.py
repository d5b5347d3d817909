"""With its store on Swift, the runner's workers read and write the data themselves through TempURLs: the published
stages hold exactly what the workers wrote (checked by the manifest), nothing lands in the client's cache, and a
failed validation still publishes its quarantine."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.store import MANIFEST
from orchestrator.artifacts.swift import SwiftStore
from orchestrator.errors import ValidationFailed
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline

pytestmark = [pytest.mark.integration, pytest.mark.openstack]


@pytest.fixture
def swift_store(cloud, swift_container, tmp_path):
    return SwiftStore(swift_container, "shop", conn=cloud, cache_dir=tmp_path / "swift-cache")


def test_workers_write_each_partition_to_swift_and_the_manifest_lists_them(shop, swift_store, dask_client, tmp_path):
    record = run_pipeline(load_pipeline(shop()), swift_store, dask_client).record
    ingest = record["stages"]["ingest.events"]
    assert (ingest["rows_in"], ingest["rows_out"], ingest["quarantined"]) == (2000, 1997, 3)
    location = ingest["outputs"][0]["key"]
    manifest = json.loads(swift_store.get_bytes(f"{location}/{MANIFEST}"))
    assert any(rel.startswith("data/part.") for rel in manifest["files"])
    # Only the stages' small files and the sources went through this machine; no dataset was downloaded.
    assert not (tmp_path / "swift-cache" / swift_store.container / "shop" / "datasets").exists()
    quarantine = pd.read_parquet(swift_store.dataset_path(location, verify=True) / "quarantine")
    assert list(quarantine["_reason"]) == ["amount: expected float, got 'oops'"] * 3


def test_a_failed_validation_on_swift_still_publishes_its_quarantine(shop, swift_store, dask_client):
    with pytest.raises(ValidationFailed, match="300 of 2,000 rows"):
        run_pipeline(load_pipeline(shop(bad_rows=300)), swift_store, dask_client)
    record = load_record(swift_store, "latest")
    (kept,) = [a for a in record["artifacts"] if a["name"] == "ingest.events.quarantine"]
    assert len(pd.read_parquet(swift_store.dataset_path(kept["key"], verify=True))) == 300
