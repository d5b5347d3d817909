"""Cluster use cases against an in-memory cloud: creation configures every node with TLS material, a failed
stack leaves nothing behind, scaling configures only new nodes, deletion is idempotent and sweeps leftovers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from support.fake_cloud import InMemoryCloud

from orchestrator.ansible.playbook import PlaybookResult
from orchestrator.clusters import provision
from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.state import cluster_state
from orchestrator.errors import CloudError, ClusterNotFound, DataopsError
from orchestrator.openstack.stacks import Leftover


@pytest.fixture(autouse=True)
def clusters_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "clusters"))
    return tmp_path / "clusters"


class RecordingConfigure:
    def __init__(self):
        self.calls = []

    def __call__(self, playbook, inventory, extravars, limit=None, on_event=None):
        self.calls.append({"playbook": playbook, "inventory": inventory, "extravars": extravars, "limit": limit})
        return PlaybookResult()


def _spec(**overrides) -> ClusterSpec:
    data = {
        "name": "demo",
        "image": "debian-12",
        "scheduler": {"flavor": "m1.small"},
        "workers": {"flavor": "m1.small", "count": 2},
        "gpu_workers": {"flavor": "gpu.small", "count": 1, "as_cpu": True},
        "network": {"public": "public"},
        "operator_cidr": "192.0.2.2/32",
    }
    data.update(overrides)
    return ClusterSpec.model_validate(data)


def _hosts(inventory, group):
    return set(inventory["all"]["children"][group]["hosts"])


def test_create_configures_scheduler_workers_and_gpu_workers_through_the_scheduler_floating_ip():
    cloud, configure = InMemoryCloud(), RecordingConfigure()
    ready = provision.create_cluster(_spec(), cloud, configure=configure)
    (call,) = configure.calls
    assert _hosts(call["inventory"], "scheduler") == {"demo-scheduler"}
    assert _hosts(call["inventory"], "worker") == {"demo-worker-0", "demo-worker-1"}
    assert _hosts(call["inventory"], "gpu_worker") == {"demo-gpu-worker-0"}
    assert "root@203.0.113.50" in call["inventory"]["all"]["vars"]["ansible_ssh_common_args"]
    assert call["extravars"]["dask_worker_scheduler_url"] == "tls://10.42.0.5:8786"
    assert call["extravars"]["dask_cuda_worker_as_cpu"] is True
    assert ready.scheduler_url == "tls://10.42.0.5:8786" and set(ready.timings) >= {"heat", "configure", "total"}
    tls_dir = cluster_state("demo").tls_dir
    assert {p.name for p in tls_dir.glob("*.pem")} == {"ca.pem", "client.pem", "demo-scheduler.pem",
                                                       "demo-worker-0.pem", "demo-worker-1.pem", "demo-gpu-worker-0.pem"}
    assert (tls_dir / "ca.key").stat().st_mode & 0o077 == 0, "the CA key must be private"
    assert cloud.keypairs["dataops-demo"].startswith("ssh-ed25519 ")


def test_create_tags_the_stack_and_passes_every_template_parameter():
    cloud = InMemoryCloud()
    provision.create_cluster(_spec(), cloud, configure=RecordingConfigure())
    stack = cloud.stacks["demo"]
    assert "dataops-cluster=demo" in stack["tags"]
    assert stack["params"]["worker_count"] == "2" and stack["params"]["gpu_worker_flavor"] == "gpu.small"
    assert stack["env"] == [], "floating-IP access keeps the floating IP"


def test_direct_access_switches_the_floating_ip_off_and_connects_without_a_jump_host():
    cloud, configure = InMemoryCloud(), RecordingConfigure()
    provision.create_cluster(_spec(access="direct", network={}), cloud, configure=configure)
    assert [p.name for p in cloud.stacks["demo"]["env"]] == ["no_floating_ip.yaml"]
    assert "ProxyCommand" not in configure.calls[0]["inventory"]["all"]["vars"]["ansible_ssh_common_args"]


def test_a_failed_stack_names_the_resource_and_reason_and_leaves_nothing_behind():
    cloud, configure = InMemoryCloud(), RecordingConfigure()
    with pytest.raises(CloudError, match=r"resource scheduler: Flavor m1.huge could not be found"):
        provision.create_cluster(_spec(scheduler={"flavor": "m1.huge"}), cloud, configure=configure)
    assert cloud.stacks == {} and cloud.keypairs == {} and cloud.leftovers == []
    assert not cluster_state("demo").exists()
    assert configure.calls == []


def test_creating_a_cluster_that_exists_is_refused():
    cloud = InMemoryCloud()
    provision.create_cluster(_spec(), cloud, configure=RecordingConfigure())
    with pytest.raises(DataopsError, match="already exists"):
        provision.create_cluster(_spec(), cloud, configure=RecordingConfigure())


def test_scaling_up_configures_only_the_new_worker():
    cloud, configure = InMemoryCloud(), RecordingConfigure()
    provision.create_cluster(_spec(), cloud, configure=configure)
    ready = provision.scale_cluster("demo", cloud, workers=3, configure=configure)
    assert configure.calls[-1]["limit"] == "demo-worker-2"
    assert len([n for n in ready.nodes if n.role == "worker"]) == 3
    assert (cluster_state("demo").tls_dir / "demo-worker-2.pem").exists()


def test_scaling_down_removes_the_highest_numbered_workers_and_configures_nothing():
    cloud, configure = InMemoryCloud(), RecordingConfigure()
    provision.create_cluster(_spec(), cloud, configure=configure)
    ready = provision.scale_cluster("demo", cloud, workers=1, configure=configure)
    assert cloud.stacks["demo"]["params"]["worker_removal_list"] == "1"
    assert [n.name for n in ready.nodes if n.role == "worker"] == ["demo-worker-0"]
    assert len(configure.calls) == 1
    assert cluster_state("demo").load_spec().workers.count == 1


def test_scaling_an_unknown_cluster_says_so():
    with pytest.raises(ClusterNotFound, match="no cluster named 'ghost'"):
        provision.scale_cluster("ghost", InMemoryCloud(), workers=1)


def test_delete_removes_stack_keypair_and_state_and_a_second_delete_succeeds():
    cloud = InMemoryCloud()
    provision.create_cluster(_spec(), cloud, configure=RecordingConfigure())
    cloud.leftovers.append(Leftover("floating_ip", "fip-1", "demo"))
    swept = provision.delete_cluster("demo", cloud)
    assert {(s.kind, s.id) for s in swept} == {("keypair", "dataops-demo"), ("floating_ip", "fip-1")}
    assert cloud.stacks == {} and cloud.keypairs == {} and cloud.leftovers == []
    assert not cluster_state("demo").exists()
    assert provision.delete_cluster("demo", cloud) == []


def test_a_stack_whose_delete_fails_on_a_server_heat_lost_is_deleted_once_that_server_is():
    # What a heat-engine stopped mid-create leaves: a server Heat has no id for, bound to the stack's port.
    cloud = InMemoryCloud()
    provision.create_cluster(_spec(), cloud, configure=RecordingConfigure())
    cloud.lost_servers["demo"] = "server-9"
    cloud.leftovers.append(Leftover("server", "server-9", "demo"))
    swept = provision.delete_cluster("demo", cloud)
    assert ("server", "server-9") in {(s.kind, s.id) for s in swept}
    assert cloud.stacks == {} and cloud.leftovers == []
    assert [w[1] for w in cloud.waits[-2:]] == ["DELETE", "DELETE"], "the stack delete is asked again"


def test_sweep_deletes_only_resources_of_clusters_whose_stack_is_gone():
    cloud = InMemoryCloud()
    provision.create_cluster(_spec(), cloud, configure=RecordingConfigure())
    cloud.leftovers.append(Leftover("port", "port-9", "old-cluster"))
    swept = provision.sweep_orphans(cloud)
    assert [(s.kind, s.id) for s in swept] == [("port", "port-9")]
    assert [l.id for l in cloud.leftovers] == ["dataops-demo"]


def test_a_cluster_idle_past_its_ttl_is_expired_and_using_it_restarts_the_clock():
    provision.create_cluster(_spec(ttl="8h"), InMemoryCloud(), configure=RecordingConfigure())
    now = datetime.now(timezone.utc)
    assert provision.expired_clusters(now + timedelta(hours=7)) == []
    assert provision.expired_clusters(now + timedelta(hours=9)) == ["demo"]
    provision.touch_cluster("demo")
    assert provision.expired_clusters(now + timedelta(hours=7, minutes=59)) == []
