"""The site playbook, run for real with ansible-runner over SSH against namespace hosts, configures a TLS Dask
cluster whose workers register with the scheduler, fails clearly on a GPU flavor without a GPU, and changes
nothing when run again."""

from __future__ import annotations

import pytest

from orchestrator.ansible.inventory import Node, SshAccess, build_inventory
from orchestrator.ansible.playbook import run_playbook
from orchestrator.clusters import tls
from orchestrator.clusters.wheelhouse import NODE_PACKAGES, build_wheelhouse, pack_wheelhouse, pinned_requirements
from orchestrator.errors import ConfigurationFailed

# Namespace hosts with sshd and full playbook runs: minutes per test; run by `make test-netns`.
pytestmark = [pytest.mark.integration, pytest.mark.netns]

NETNS_HOSTS = {"test-scheduler": "scheduler", "test-worker-0": "worker", "test-gpu-worker-0": "gpu_worker"}


@pytest.fixture(scope="module")
def cluster(netns_hosts, ssh_key, tmp_path_factory):
    tls_dir = tmp_path_factory.mktemp("tls")
    tls.ensure_ca(tls_dir, "test")
    nodes = [Node(name=name, role=NETNS_HOSTS[name], address=host.address) for name, host in netns_hosts.items()]
    for node in nodes:
        tls.issue_certificate(tls_dir, node.name, [node.address])
    client = tls.issue_certificate(tls_dir, tls.CLIENT_NAME)
    # The roles alone: Dask, without what pipelines need.
    requirements = pinned_requirements(NODE_PACKAGES)
    wheelhouse = build_wheelhouse(requirements, tmp_path_factory.getbasetemp().parent / "dataops-wheelhouse")
    scheduler = nodes[0]
    extravars = {
        "common_python_packages": requirements,
        "common_wheelhouse_archive": str(pack_wheelhouse(wheelhouse)),
        "common_tls_source_dir": str(tls_dir),
        "dask_worker_scheduler_url": f"tls://{scheduler.address}:8786",
        "dask_worker_registration_timeout": 60,
    }
    inventory = build_inventory(nodes, SshAccess(private_key=ssh_key))
    return {"inventory": inventory, "extravars": extravars, "client_tls": client, "scheduler": scheduler}


def _registered_worker_names(cluster) -> set[str]:
    from distributed import Client

    security = tls.dask_security(cluster["client_tls"])
    with Client(f"tls://{cluster['scheduler'].address}:8786", security=security, timeout=20) as client:
        return {w["name"] for w in client.scheduler_info()["workers"].values()}


def test_a_gpu_flavor_without_a_visible_gpu_fails_naming_the_node_and_the_reason(cluster):
    with pytest.raises(ConfigurationFailed) as failure:
        run_playbook("site.yml", cluster["inventory"], cluster["extravars"])
    message = str(failure.value)
    assert "test-gpu-worker-0" in message and "no GPU is visible" in message, message
    assert "test-worker-0" not in message, f"the CPU worker should have succeeded: {message}"


def test_the_cluster_comes_up_with_workers_registered_over_tls_when_gpu_nodes_run_as_cpu(cluster):
    events = []
    result = run_playbook(
        "site.yml", cluster["inventory"], {**cluster["extravars"], "dask_cuda_worker_as_cpu": True}, on_event=events.append
    )
    assert result.total_changed > 0
    assert {e.host for e in events} == set(NETNS_HOSTS)
    assert _registered_worker_names(cluster) == {"test-worker-0", "test-gpu-worker-0"}


def test_a_second_run_changes_nothing(cluster):
    result = run_playbook("site.yml", cluster["inventory"], {**cluster["extravars"], "dask_cuda_worker_as_cpu": True})
    assert result.total_changed == 0, f"expected an idempotent run, changed per host: {result.changed}"


def test_the_scheduler_refuses_a_client_without_the_cluster_certificate(cluster):
    from distributed import Client

    with pytest.raises(OSError):
        Client(f"tcp://{cluster['scheduler'].address}:8786", timeout=5)
