"""Leases on a real Swift: ``put_if_absent`` is a PUT with ``If-None-Match: *`` (412 when the object exists), and
two runners ticking one Swift store at once never run a slot twice."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from orchestrator.artifacts.swift import SwiftStore
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.state import ScheduleState
from orchestrator.scheduling.tick import ExecutionResult, tick

pytestmark = [pytest.mark.openstack, pytest.mark.integration]


def at(hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"2027-06-01T{hhmmss}").replace(tzinfo=UTC)


@pytest.fixture()
def store(cloud, swift_container, tmp_path):
    return SwiftStore(swift_container, "ops", conn=cloud, cache_dir=tmp_path / "cache")


def test_put_if_absent_creates_once_and_swift_refuses_the_second_write(store, cloud):
    assert store.put_if_absent("schedules/s/leases/x/0001.json", b'{"runner": "a"}') is True
    assert store.put_if_absent("schedules/s/leases/x/0001.json", b'{"runner": "b"}') is False
    assert store.get_bytes("schedules/s/leases/x/0001.json") == b'{"runner": "a"}'
    # Swift itself refuses: the condition is enforced by the object server, not by this client.
    reply = cloud.object_store.put(f"/{store.container}/ops/schedules/s/leases/x/0001.json", data=b"c",
                                   headers={"If-None-Match": "*"})
    assert reply.status_code == 412


def test_of_threads_racing_for_one_lease_on_swift_exactly_one_wins(store):
    barrier = threading.Barrier(6)
    won = []

    def race(index: int) -> None:
        barrier.wait()
        if store.put_if_absent("schedules/s/leases/y/0001.json", f'{{"runner": "r{index}"}}'.encode()):
            won.append(index)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    assert store.get_bytes("schedules/s/leases/y/0001.json") == f'{{"runner": "r{won[0]}"}}'.encode()


def test_two_runners_ticking_one_swift_store_never_run_a_slot_twice(store):
    spec = ScheduleSpec.model_validate({"name": "every-minute", "job": "cluster-sweep", "cron": "* * * * *",
                                        "catchup": "all", "max_catchup": 10, "concurrency": "allow"})
    ScheduleState(store, spec.name).save(spec, "every-minute.yaml", at("00:00:00"))
    calls: list[str] = []
    lock = threading.Lock()

    def execute(schedule, slot):
        with lock:
            calls.append(f"{slot:%H:%M}")
        return ExecutionResult()

    barrier = threading.Barrier(2)

    def runner(name: str) -> None:
        barrier.wait()
        tick(store, at("00:06:05"), name, execute)

    threads = [threading.Thread(target=runner, args=(name,)) for name in ("r1", "r2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls) == ["00:01", "00:02", "00:03", "00:04", "00:05", "00:06"], "each slot exactly once"
    history = ScheduleState(store, spec.name).history()
    assert [r.status for r in history] == ["succeeded"] * 6
    assert all(len(r.attempts) == 1 for r in history)
