"""Control-plane services crash while `cluster create` builds a cluster on namespace hosts, and come back:
heat-engine alone, or nova-compute and then rabbitmq in the same create, SIGKILLed (the whole process group) as soon
as the cluster's first server is building, each started again by ``devstack/controlplane.sh restart`` before the
next one is killed. The create either completes, its nodes configured, or fails with one error naming the stack and
what happened to it; either way, the cluster deleted afterwards leaves no server, port, floating IP, security group,
key pair, stack, namespace or bridge."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.clusters import provision
from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.wheelhouse import build_wheelhouse, pinned_requirements
from orchestrator.errors import DataopsError

from netns_driver.netns_host import free_subnet
from support.chaos_table import record as record_case
from support.netns_clusters import RouteCheckedConfigure, left_behind

pytestmark = [pytest.mark.integration, pytest.mark.openstack, pytest.mark.chaos]

ROOT = Path(__file__).resolve().parents[3]
CONTROLPLANE = ROOT / "devstack" / "controlplane.sh"
STATE = Path(os.environ.get("DATAOPS_CP_STATE", ROOT / "devstack" / ".state"))
FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")
# Per case: long enough for the stack to finish once the services are back (an undisturbed two-server stack takes
# well under a minute here), short enough that a stack Heat has abandoned costs the suite little. A heat-engine
# SIGKILLed mid-create leaves its stack in progress for good (Heat resumes no stack a dead engine held), so that case
# needs no more than the crash and the restart.
CASES = {"heat-engine": (("heat-engine",), 45), "nova-compute-then-rabbitmq": (("nova-compute", "rabbitmq"), 90)}


class CrashWhenAServerBuilds(threading.Thread):
    """Waits for the cluster's first server to appear in Nova, then crashes each of ``services`` in turn, starting
    each again before the next."""

    def __init__(self, conn, cluster: str, services: tuple[str, ...], timeout_s: float):
        super().__init__(daemon=True)
        self.conn, self.cluster, self.services, self.timeout_s = conn, cluster, services, timeout_s
        self.server_ids: set[str] = set()
        self.network_ids: set[str] = set()
        self.restarts: dict[str, subprocess.CompletedProcess] = {}
        self.restart_s: dict[str, float] = {}  # from the SIGKILL to the service answering again
        self.done = threading.Event()

    def run(self) -> None:
        try:
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline and not self._servers():
                time.sleep(0.2)
            self.network_ids.update(n.id for n in self.conn.network.networks() if n.name.startswith(self.cluster))
            for service in self.services:
                crashed = time.monotonic()
                self.restarts[service] = restart = subprocess.run(
                    [str(CONTROLPLANE), "restart", service, "--crash"], capture_output=True, text=True, timeout=600)
                self.restart_s[service] = time.monotonic() - crashed
                if restart.returncode != 0:
                    return
        finally:
            self.done.set()

    def came_back(self) -> str | None:
        """None when every crashed service started again, else which did not and why."""
        for service in self.services:
            restart = self.restarts.get(service)
            if restart is None or restart.returncode != 0:
                return f"{service} did not come back: {restart.stderr[-2000:] if restart else 'never crashed'}"
        return None

    def _servers(self) -> list:
        servers = [s for s in self.conn.compute.servers() if s.name.startswith(self.cluster)]
        self.server_ids.update(s.id for s in servers)
        return servers


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """The nodes' wheels, shared with the other cluster tests (built once per machine)."""
    return build_wheelhouse(pinned_requirements(), tmp_path_factory.getbasetemp().parent / "dataops-wheelhouse")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_service_crashing_during_cluster_create_ends_in_a_cluster_or_a_clear_error_and_delete_leaves_nothing(
        case, cluster_cloud, clusters_dir, wheelhouse):
    services, stack_timeout_s = CASES[case]
    for service in services:
        if os.geteuid() != 0 or not (STATE / "run" / f"{service}.pid").exists():
            pytest.skip(f"{service} is not a process of the loopback control plane this test may restart")
    name = f"cp{uuid.uuid4().hex[:6]}"
    subnet = free_subnet()
    spec = ClusterSpec.model_validate({
        "name": name, "image": IMAGE, "scheduler": {"flavor": FLAVOR}, "workers": {"flavor": FLAVOR, "count": 1},
        "network": {"cidr": str(subnet)}, "access": "direct", "operator_cidr": f"{subnet.network_address + 1}/32",
    })
    conn = cluster_cloud.conn
    crash = CrashWhenAServerBuilds(conn, name, services, stack_timeout_s)
    crash.start()
    started = time.monotonic()
    error: DataopsError | None = None
    try:
        ready = provision.create_cluster(spec, cluster_cloud, configure=RouteCheckedConfigure(), wheelhouse=wheelhouse,
                                         stack_timeout_s=stack_timeout_s)
    except DataopsError as exc:
        error, ready = exc, None
    finally:
        crash.done.wait(600)
        seconds = time.monotonic() - started
        assert crash.came_back() is None, crash.came_back()
        provision.delete_cluster(name, cluster_cloud)

    left = left_behind(conn, name, sorted(crash.server_ids), next(iter(crash.network_ids), ""))
    if error is None:
        outcome = "completed, nodes configured"
        clear = sorted(n.role for n in ready.nodes) == ["scheduler", "worker"]
    else:
        message = str(error)
        outcome = ("clear error: Heat abandoned the stack (timed out)" if "still CREATE_IN_PROGRESS" in message
                   else f"clear error: {type(error).__name__}")
        # One error naming the stack and what Heat said of it: a failed resource and its reason, or a stack left
        # in progress with its last event.
        clear = name in message and ("FAILED" in message or "its last event" in message or "no event" in message)
    record_case(
        f"control-plane-{case}-crash-during-cluster-create",
        component="control plane",
        fault=f"{' then '.join(services)} SIGKILLed (the process group) when the cluster's first server was "
              f"building, {'each ' if len(services) > 1 else ''}started again (devstack/controlplane.sh restart "
              f"--crash){' before the next was killed' if len(services) > 1 else ''}; 2-node cluster on namespace "
              f"hosts",
        must_hold="`cluster create` completes, or fails with an error naming the stack and what happened; the "
                  "cluster deleted afterwards leaves no server, port, floating IP, security group, key pair, stack, "
                  "namespace or bridge",
        tries=1,
        held=int(clear and not any(left.values())),
        outcomes={outcome: 1},
        notes=f"{'the create said: ' + str(error)[:300] if error else 'the create completed'}; "
              f"create {seconds:.0f} s in all; " +
              ", ".join(f"{service} back after {s:.0f} s" for service, s in crash.restart_s.items()),
    )
    assert clear, f"unclear outcome: {error!r}"
    assert left == {kind: [] for kind in left}
