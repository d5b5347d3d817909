"""A schedule of the shop pipeline, ticked by a fake clock across three hourly slots on a real Dask cluster into a
local store: three runs, the second killed mid-run and resumed from the stage cache by the next tick."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime

import pytest

from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.scheduling.state import ScheduleState
from orchestrator.usecases.schedules import create_schedule, tick_schedules
from tests.integration.pipeline.conftest import PIPELINE, make_shop

pytestmark = pytest.mark.integration


class Killed(BaseException):
    """The runner's process dies here (as with SIGKILL): nothing after this point of the tick runs."""


def at(hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"2027-06-01T{hhmmss}").replace(tzinfo=UTC)


def test_three_slots_run_three_times_and_the_killed_one_resumes_from_the_cache(tmp_path, dask_client):
    shop = tmp_path / "shop"
    shop.mkdir()
    make_shop(shop, rows=2000)
    (shop / "pipeline.yaml").write_text(textwrap.dedent(PIPELINE.format(max_bad=0.05, key="event_id")).lstrip())
    schedule = tmp_path / "hourly-shop.yaml"
    schedule.write_text(textwrap.dedent(f"""
        name: hourly-shop
        pipeline: shop/pipeline.yaml
        cron: "0 * * * *"
        run_deadline: 30m
        scheduler: {dask_client.scheduler.address}
    """).lstrip())
    location = str(tmp_path / "store")
    create_schedule(schedule, location, now=at("00:00:00"))

    first = tick_schedules(location, now=at("01:00:10"), runner="runner-a")
    assert [(o.slot, o.action) for o in first.outcomes] == [("2027-06-01T01:00:00Z", "succeeded")]

    make_shop(shop, rows=2400)  # new data arrives before the second slot

    def killed_at_features(stage: str, event: str, info: dict) -> None:
        if stage == "features" and event == "start":
            raise Killed()

    with pytest.raises(Killed):
        tick_schedules(location, now=at("02:00:10"), runner="runner-b", on_event=killed_at_features)

    third = tick_schedules(location, now=at("03:00:10"), runner="runner-c")
    assert [(o.slot, o.action, o.attempt) for o in third.outcomes] == [
        ("2027-06-01T02:00:00Z", "succeeded", 2), ("2027-06-01T03:00:00Z", "succeeded", 1)]

    store = LocalStore(location)
    history = ScheduleState(store, "hourly-shop").history()
    assert [(r.slot[11:16], r.status) for r in history] == [("01:00", "succeeded"), ("02:00", "succeeded"),
                                                            ("03:00", "succeeded")]
    second = history[1]
    assert [(a["runner"], a["outcome"]) for a in second.attempts] == [("runner-b", "lost"), ("runner-c", "succeeded")]

    records = {run_id: load_record(store, run_id) for run_id in list_run_ids(store)}
    by_slot = {}
    for record in records.values():
        by_slot.setdefault(record["parameters"]["as_of"], []).append(record)
    assert sorted(by_slot) == ["2027-06-01T01:00:00Z", "2027-06-01T02:00:00Z", "2027-06-01T03:00:00Z"]
    (resumed,) = [r for r in by_slot["2027-06-01T02:00:00Z"] if r["run_id"] == second.run_ids[0]]
    (killed,) = [r for r in by_slot["2027-06-01T02:00:00Z"] if r is not resumed]
    assert killed["status"] == "running", "the killed run never finished"
    assert resumed["status"] == "succeeded"
    statuses = {name: stage["status"] for name, stage in resumed["stages"].items()}
    assert statuses == {"ingest.events": "cached", "ingest.customers": "cached", "blend": "cached",
                        "features": "ran", "split": "ran"}, json.dumps(statuses)
    (third_run,) = by_slot["2027-06-01T03:00:00Z"]
    assert third_run["status"] == "succeeded"
    assert {stage["status"] for stage in third_run["stages"].values()} == {"cached"}
    assert third_run["stages"]["split"]["rows_out"] == resumed["stages"]["split"]["rows_out"]
