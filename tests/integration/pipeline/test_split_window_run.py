"""A pipeline whose split follows as_of, run for two slots on a real Dask cluster: the upstream stages come from
the cache, the split runs again with dates a week later, and the record shows the dates each slot used."""

from __future__ import annotations

import re

import pytest

from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline

pytestmark = pytest.mark.integration

WINDOW = """split:
  by: time
  column: ts
  window: {train: 90d, validation: 14d, test: 14d, label_delay: 1d}
  key: [event_id]
"""


def test_each_slot_splits_its_own_window_and_reuses_every_upstream_stage(shop, store, dask_client):
    path = shop()
    path.write_text(re.sub(r"split:\n(  .*\n)+", WINDOW, path.read_text()))
    first = run_pipeline(load_pipeline(path), store, dask_client, as_of="2024-10-01T00:00:00Z").record
    later = run_pipeline(load_pipeline(path), store, dask_client, as_of="2024-10-08T00:00:00Z").record
    assert first["parameters"]["split"]["boundaries"]["test"] == "2024-09-30T00:00:00Z"
    assert later["parameters"]["split"]["boundaries"]["test"] == "2024-10-07T00:00:00Z"
    assert later["parameters"]["split"]["start"] == "2024-06-11T00:00:00Z"
    upstream = {name for name in later["stages"] if name.startswith(("ingest", "blend", "features"))}
    assert upstream and {later["stages"][name]["status"] for name in upstream} == {"cached"}
    assert later["stages"]["split"]["status"] == "ran"
    # 2000 events over 2024: about 5.5 a day, so 14 days of test hold about 77; 90 days of train about 490.
    partitions = later["stages"]["split"]["partitions"]
    assert 60 < partitions["test"]["rows"] < 95 and 400 < partitions["train"]["rows"] < 580
    assert later["stages"]["split"]["rows_out"] < later["stages"]["split"]["rows_in"], "older rows are left out"
