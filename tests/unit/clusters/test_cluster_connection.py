"""A pipeline reaches a cluster's scheduler over TLS with the cluster's own client certificate, only once the cluster
is ready and only where its scheduler is reachable."""

import pytest

from orchestrator.clusters import tls
from orchestrator.clusters.connection import scheduler_connection
from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.state import cluster_state
from orchestrator.errors import ClusterNotFound, DataopsError


@pytest.fixture(autouse=True)
def clusters_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("DATAOPS_CLUSTERS_DIR", str(tmp_path / "clusters"))


def _cluster(name, status="ready", access="direct"):
    spec = ClusterSpec.model_validate({
        "name": name, "image": "debian-12", "scheduler": {"flavor": "m1.small"},
        "workers": {"flavor": "m1.small", "count": 2}, "access": access, "operator_cidr": "192.0.2.10/32",
        "network": {"cidr": "10.99.0.0/24", **({"public": "public"} if access != "direct" else {})},
    })
    state = cluster_state(name)
    state.save(spec, status=status, outputs={"scheduler_url": "tls://10.99.0.5:8786"})
    tls.ensure_ca(state.tls_dir, name)  # as create does


def test_a_ready_cluster_gives_its_scheduler_url_and_a_security_requiring_tls():
    _cluster("ready")
    url, security = scheduler_connection("ready")
    assert url == "tls://10.99.0.5:8786"
    assert security.require_encryption and security.tls_client_cert.endswith("client.pem")


def test_a_cluster_still_configuring_is_refused_with_its_status():
    _cluster("young", status="configuring")
    with pytest.raises(DataopsError, match="cluster 'young' is 'configuring', not ready"):
        scheduler_connection("young")


def test_a_cluster_behind_a_floating_ip_is_refused_with_the_way_out():
    _cluster("far", access="floating_ip")
    with pytest.raises(DataopsError, match="opens only SSH to this machine"):
        scheduler_connection("far")


def test_an_unknown_cluster_is_named():
    with pytest.raises(ClusterNotFound, match="no cluster named 'ghost'"):
        scheduler_connection("ghost")
