"""A control-plane service crashes while `cluster create` builds a cluster on namespace hosts, and comes back:
heat-engine, nova-compute or rabbitmq SIGKILLed (its whole process group) as soon as the cluster's first server is
building, then started again by ``devstack/controlplane.sh restart``. The create either completes, its nodes
configured, or fails with one error naming the stack and what happened to it; either way, the cluster deleted
afterwards leaves no server, port, floating IP, security group, key pair, stack, namespace or bridge."""

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
# Long enough for an undisturbed two-server stack here (well under a minute), short enough that a stack Heat has
# abandoned costs the suite little.
STACK_TIMEOUT_S = 90


class CrashWhenAServerBuilds(threading.Thread):
    """Waits for the cluster's first server to appear in Nova, then crashes ``service`` and starts it again."""

    def __init__(self, conn, cluster: str, service: str):
        super().__init__(daemon=True)
        self.conn, self.cluster, self.service = conn, cluster, service
        self.server_ids: set[str] = set()
        self.network_ids: set[str] = set()
        self.restart: subprocess.CompletedProcess | None = None
        self.crashed_at: float | None = None
        self.done = threading.Event()

    def run(self) -> None:
        try:
            deadline = time.monotonic() + STACK_TIMEOUT_S
            while time.monotonic() < deadline and not self._servers():
                time.sleep(0.2)
            self.network_ids.update(n.id for n in self.conn.network.networks() if n.name.startswith(self.cluster))
            self.crashed_at = time.monotonic()
            self.restart = subprocess.run([str(CONTROLPLANE), "restart", self.service, "--crash"],
                                          capture_output=True, text=True, timeout=600)
        finally:
            self.done.set()

    def _servers(self) -> list:
        servers = [s for s in self.conn.compute.servers() if s.name.startswith(self.cluster)]
        self.server_ids.update(s.id for s in servers)
        return servers


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    """The nodes' wheels, shared with the other cluster tests (built once per machine)."""
    return build_wheelhouse(pinned_requirements(), tmp_path_factory.getbasetemp().parent / "dataops-wheelhouse")


@pytest.mark.parametrize("service", ["heat-engine", "nova-compute", "rabbitmq"])
def test_a_service_crashing_during_cluster_create_ends_in_a_cluster_or_a_clear_error_and_delete_leaves_nothing(
        service, cluster_cloud, clusters_dir, wheelhouse):
    if os.geteuid() != 0 or not (STATE / "run" / f"{service}.pid").exists():
        pytest.skip(f"{service} is not a process of the loopback control plane this test may restart")
    name = f"cp{uuid.uuid4().hex[:6]}"
    subnet = free_subnet()
    spec = ClusterSpec.model_validate({
        "name": name, "image": IMAGE, "scheduler": {"flavor": FLAVOR}, "workers": {"flavor": FLAVOR, "count": 1},
        "network": {"cidr": str(subnet)}, "access": "direct", "operator_cidr": f"{subnet.network_address + 1}/32",
    })
    conn = cluster_cloud.conn
    crash = CrashWhenAServerBuilds(conn, name, service)
    crash.start()
    started = time.monotonic()
    error: DataopsError | None = None
    try:
        ready = provision.create_cluster(spec, cluster_cloud, configure=RouteCheckedConfigure(), wheelhouse=wheelhouse,
                                         stack_timeout_s=STACK_TIMEOUT_S)
    except DataopsError as exc:
        error, ready = exc, None
    finally:
        crash.done.wait(600)
        seconds = time.monotonic() - started
        assert crash.restart is not None and crash.restart.returncode == 0, \
            f"{service} did not come back: {crash.restart.stderr[-2000:] if crash.restart else 'never crashed'}"
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
        f"control-plane-{service}-crash-during-cluster-create",
        component="control plane",
        fault=f"{service} SIGKILLed (its process group) when the cluster's first server was building, then started "
              f"again (devstack/controlplane.sh restart --crash); 2-node cluster on namespace hosts",
        must_hold="`cluster create` completes, or fails with an error naming the stack and what happened; the "
                  "cluster deleted afterwards leaves no server, port, floating IP, security group, key pair, stack, "
                  "namespace or bridge",
        tries=1,
        held=int(clear and not any(left.values())),
        outcomes={outcome: 1},
        notes=f"{'the create said: ' + str(error)[:300] if error else 'the create completed'}; "
              f"create {seconds:.0f} s in all",
    )
    assert clear, f"unclear outcome: {error!r}"
    assert left == {kind: [] for kind in left}
