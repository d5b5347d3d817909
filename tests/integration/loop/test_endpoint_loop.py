"""The closed loop on the CI control plane: a 2-node inference endpoint (namespace hosts behind Nova, HTTPS with
the endpoint's CA) serving version 1, capturing every request into Swift through a URL signed for captures/ alone
(the nodes hold no cloud credential), and the watch following it as a schedule runner does: from a machine that
holds none of the endpoint's state (no SSH key to its nodes, no token), reaching it through the store alone.

Version 1 learnt the visits before a shift (tests/support/drifting_visits.py); a client sends visits from after it
to both nodes. The watch flags drift on three consecutive windows, retrains as of now on the shared Dask cluster
into the Swift store, the challenger wins on the freshest labelled fortnight and is rolled out node by node, through
the store to the nodes' followers, while the client keeps sending requests (none may fail); the next slot of a watch
schedule then finds no drift for version 2. Undeploying leaves nothing in the cloud. (A challenger that cannot beat the
margin is the local loop's case: the decision is made before any target is touched, the same for every target.)
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import yaml
from netns_driver.netns_host import free_subnet
from support.endpoint_hosts import RouteChecked, assert_nodes_routed
from support.swift_cleanup import remove_container

from orchestrator.artifacts.open import open_store
from orchestrator.clusters.provision import Progress
from orchestrator.deploy import rollout
from orchestrator.deploy.state import endpoint_state
from orchestrator.loop.decide import DRIFT_NOT_SUSTAINED, NO_DRIFT_CODE, PROMOTED, RETRAIN_CODE
from orchestrator.loop.records import decisions
from orchestrator.usecases.deploy import deploy_model
from orchestrator.usecases.run import run_pipeline_file
from orchestrator.usecases.schedules import create_schedule, run_now
from orchestrator.usecases.watch import Watch
from tests.support.drifting_visits import MODEL, inputs, make_visits, records, write_pipeline
from tests.support.loop_windows import WindowedWorld

pytestmark = [pytest.mark.integration, pytest.mark.openstack]

FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")
EVERY_S = 15      # a window: long enough to send its rows and see them reach Swift (servers flush every 5 s)
WINDOW_ROWS = 600
MIN_ROWS = 300


@pytest.fixture(scope="module")
def container(cloud):
    name = f"dataops-test-{uuid.uuid4().hex[:10]}"
    yield name
    remove_container(cloud, name)


@pytest.fixture(scope="module")
def endpoint(cloud, admin_cloud, container, tmp_path_factory):
    """One endpoint of 2 nodes, capturing every request; undeployed at the end, leaving nothing.
    (It needs the container only to be undeployed before it: its nodes write captures there until then.)"""
    from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud

    if "netns" not in {h.hypervisor_type for h in admin_cloud.compute.hypervisors(details=True)}:
        pytest.fail("the cloud's compute driver is not the netns driver (devstack/controlplane.sh up, as root)")
    name = f"loop{uuid.uuid4().hex[:6]}"
    subnet = free_subnet()
    folder = tmp_path_factory.mktemp("loop-endpoint")
    spec_file = folder / "endpoint.yaml"
    spec_file.write_text(yaml.safe_dump({
        "name": name, "image": IMAGE, "flavor": FLAVOR, "nodes": 2, "network": {"cidr": str(subnet)},
        "operator_cidr": f"{subnet.network_address + 1}/32", "client_cidr": str(subnet), "capture_rate": 1.0,
        "range_policy": "flag", "follow_every_s": 2}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DATAOPS_ENDPOINTS_DIR", str(folder / "endpoints"))
        # Every playbook run, the watch's rollouts included, first checks that the nodes route through our bridge.
        patch.setattr(rollout, "run_playbook", RouteChecked(name))
        try:
            yield name, spec_file
        finally:
            rollout.undeploy(name, OpenStackClusterCloud(cloud))
            namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert [s.name for s in cloud.compute.servers() if s.name.startswith(name)] == []
    assert list(cloud.network.ports(tags=[f"dataops-endpoint={name}"])) == []
    assert [g.name for g in cloud.network.security_groups() if g.name.startswith(name)] == []
    assert [k.name for k in cloud.compute.keypairs() if k.name == rollout.keypair_name(name)] == []
    assert name not in namespaces


class EndpointWorld(WindowedWorld):
    """Visits up to now, version 1 trained before the shift into a Swift store and deployed to the endpoint, and
    the watch of that endpoint."""

    def __init__(self, folder: Path, container: str, endpoint: tuple[str, Path], dask_client, margin: float):
        self.folder, (self.endpoint, spec_file) = folder, endpoint
        shift = make_visits(folder, datetime.now(UTC).replace(microsecond=0))
        self.pipeline = write_pipeline(folder, every=f"{EVERY_S}s", windows=3, min_rows=MIN_ROWS, cooldown="1m",
                                       margin=margin)
        self.store_location = f"swift://{container}/{folder.name}"
        self.scheduler = dask_client.scheduler.address
        run_pipeline_file(self.pipeline, self.store_location, self.scheduler, as_of=shift.isoformat())
        self.store = open_store(self.store_location)
        deploy_model(f"{MODEL}:1", self.endpoint, spec_file, self.store_location, Progress())
        state = endpoint_state(self.endpoint)
        self.urls = state.load()["outputs"]["endpoint_urls"]
        assert_nodes_routed(self.endpoint, [urlparse(url).hostname for url in self.urls])
        self.headers = {"Authorization": f"Bearer {state.ensure_token()}", "Content-Type": "application/json"}
        self.context = rollout.client_context(state.ca_file)
        self.watch = Watch(self.pipeline, endpoint=self.endpoint, store=self.store_location,
                           scheduler=self.scheduler)
        self.rng = np.random.default_rng(3)
        self.start, self.every_s = datetime.fromtimestamp(int(time.time()) + 1, UTC), EVERY_S

    def post(self, url: str, rows: list[dict]) -> tuple[int, dict]:
        request = urllib.request.Request(f"{url}/v2/models/{MODEL}/predict", json.dumps({"records": rows}).encode(),
                                         self.headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def send(self, rows: int = WINDOW_ROWS, per_request: int = 50) -> None:
        """Shifted visits to both nodes in turn; returns once every row is captured in the store."""
        before = self.captured()
        sent = records(inputs(rows, True, self.rng))
        for index, first in enumerate(range(0, rows, per_request)):
            status, body = self.post(self.urls[index % len(self.urls)], sent[first:first + per_request])
            assert status == 200, body
        self.wait_captured(before + rows, 30, lambda: " (in Swift)")

    def window(self, n: int):
        """Window ``n``, its watch step taken as a schedule runner takes it."""
        with as_the_runner(self.folder):
            return super().window(n)

    def versions_served(self) -> list[int]:
        return [int(self.post(url, records(inputs(1, True, self.rng)))[1]["model_version"]) for url in self.urls]


@contextlib.contextmanager
def as_the_runner(folder: Path):
    """On a machine that holds none of the endpoint's state (its SSH key, token and record stay with the operator)
    and reaches the endpoint through the store alone: a winner rolls out to the nodes' followers, never over SSH."""
    def no_ssh(playbook, *args, **kwargs):
        raise AssertionError(f"the watch ran {playbook} over SSH: the runner holds no key to the nodes")

    with pytest.MonkeyPatch.context() as runner:
        runner.setenv("DATAOPS_ENDPOINTS_DIR", str(folder / "runner-vm"))
        runner.setattr(rollout, "run_playbook", no_ssh)
        yield


class Client(threading.Thread):
    """Keeps sending shifted visits to both nodes until stopped; counts each version's answers and every failure."""

    def __init__(self, world: EndpointWorld):
        super().__init__(daemon=True)
        self.world, self.stop = world, threading.Event()
        self.versions: dict[int, int] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        rows = records(inputs(2000, True, np.random.default_rng(9)))
        index = 0
        while not self.stop.is_set():
            url = self.world.urls[index % len(self.world.urls)]
            batch = rows[(index * 20) % 1980:(index * 20) % 1980 + 20]
            index += 1
            try:
                status, body = self.world.post(url, batch)
            except (OSError, ssl.SSLError) as exc:
                self.failures.append(f"{url}: {exc!r}")
                continue
            if status != 200:
                self.failures.append(f"{url}: HTTP {status}: {body}")
            else:
                self.versions[body["model_version"]] = self.versions.get(body["model_version"], 0) + 1
            time.sleep(0.02)


def test_drift_on_an_endpoint_retrains_and_the_winner_rolls_out_with_no_failed_request(
        endpoint, container, tmp_path, dask_client):
    world = EndpointWorld(tmp_path, container, endpoint, dask_client, margin=0.02)
    first, second = world.window(1), world.window(2)
    assert [first.check["verdict"], second.check["verdict"]] == ["drift", "drift"]
    assert [first.decision.code, second.decision.code] == [DRIFT_NOT_SUSTAINED] * 2, second.decision.reason
    client = Client(world)
    client.start()

    third = world.window(3)

    assert third.decision.code == RETRAIN_CODE and third.comparison.code == "better", third.comparison.reason
    assert third.retrain.outcome == PROMOTED and third.deployed["version"] == 2
    assert third.deployed["status"] == "succeeded" and len(third.deployed["nodes"]) == 2
    assert third.deployed["mode"] == "pull", "the runner's watch rolled it out through the store"
    time.sleep(2)
    client.stop.set()
    client.join(30)
    answered = sum(client.versions.values())
    assert client.failures == [], f"{len(client.failures)} of {answered} failed: {client.failures[:3]}"
    assert client.versions.get(1, 0) > 0 and client.versions.get(2, 0) > 0, client.versions
    assert world.versions_served() == [2, 2]

    # The next slot of a watch schedule, run as the runner runs it: for version 2 the shifted traffic is no drift.
    n = int((datetime.now(UTC) - world.start).total_seconds() // EVERY_S) + 2
    world.end_of_window(n - 1)
    world.send()
    quiet_at = world.end_of_window(n)
    schedule = world.folder / "watch.yaml"
    schedule.write_text(f"name: watch-endpoint\ncron: '* * * * *'\nscheduler: {world.scheduler}\nwatch:\n"
                        f"  endpoint: {world.endpoint}\n  pipeline: pipeline.yaml\n")
    create_schedule(schedule, world.store_location, now=quiet_at - timedelta(minutes=1))
    with as_the_runner(world.folder):
        outcome = run_now("watch-endpoint", world.store_location, now=quiet_at)
    assert outcome.action == "succeeded", outcome.reason
    quiet = decisions(world.store, world.endpoint)[-1]
    assert (quiet.version, quiet.code) == (2, NO_DRIFT_CODE), quiet.reason

    timings = third.timings
    print(f"\nendpoint loop: first drifted window ended {first.now:%H:%M:%S}; version 2 served on both nodes "
          f"{(third.retrain.finished - first.now).total_seconds():.1f} s later (windows 2 and 3: {2 * EVERY_S} s; "
          f"step 3: {sum(timings.values()):.1f} s = " + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
          + f"); {answered} client requests during step 3, 0 failed ({client.versions})")

