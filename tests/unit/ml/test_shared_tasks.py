"""Tasks sharing one scattered copy of their data: results by call, errors as raised, and a bounded number of
scatters when the copies keep being lost (every copy lost with its workers is the chaos suite's case)."""

from __future__ import annotations

import time

import pytest
from distributed import Client, LocalCluster
from distributed.client import FutureCancelledError

from orchestrator.errors import StageFailed
from orchestrator.ml.shared_tasks import SCATTERS, run_sharing


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        yield client


def scaled(data, factor, offset=0):
    return [factor * value + offset for value in data]


def test_every_call_gets_the_shared_data_first_and_its_result_comes_back_under_its_index(client):
    calls = [(factor,) for factor in range(6)]
    results = dict(run_sharing(client, [[1, 2, 3]], scaled, calls))
    assert results == {factor: [factor, 2 * factor, 3 * factor] for factor in range(6)}


def test_a_call_that_raises_fails_the_whole_run_with_its_own_error(client):
    with pytest.raises(TypeError):
        dict(run_sharing(client, [[1, 2]], scaled, [(2,), (None,)]))


def lost(data):
    raise FutureCancelledError(key="shared", reason="already forgotten")


def test_shared_data_lost_at_every_scatter_ends_in_an_error_saying_so(client):
    with pytest.raises(StageFailed, match=f"lost every copy of the shared data {SCATTERS} times; 3 of 3 tasks"):
        list(run_sharing(client, [[1]], lost, [(), (), ()]))


def test_nothing_it_scattered_or_submitted_stays_on_the_cluster(client):
    dict(run_sharing(client, [list(range(1000))], scaled, [(1,), (2,)]))
    scheduler = client.cluster.scheduler
    deadline = time.monotonic() + 10  # releases reach the scheduler asynchronously
    while scheduler.tasks and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not scheduler.tasks
