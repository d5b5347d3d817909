"""How a client reaches a cluster created by ``dataops cluster create``: the scheduler's TLS address from the
stack's outputs, and the cluster's own client certificate."""

from __future__ import annotations

from orchestrator.clusters import tls
from orchestrator.clusters.spec import AccessMode
from orchestrator.clusters.state import cluster_state
from orchestrator.errors import DataopsError


def scheduler_connection(name: str) -> tuple[str, object]:
    """Return the scheduler URL of cluster ``name`` and a ``distributed.Security`` that requires TLS.

    Raises:
        ClusterNotFound: No such cluster on this machine.
        DataopsError: The cluster is not ready (still being created, or its configuration failed).
    """
    state = cluster_state(name)
    record = state.load_record()
    status = record.get("status")
    url = record.get("outputs", {}).get("scheduler_url")
    if status != "ready" or not url:
        raise DataopsError(f"cluster {name!r} is {status!r}, not ready: see `dataops cluster show {name}`")
    access = state.load_spec().access
    # A runner on the cluster's own network (its copy of the record says so) reaches the scheduler's fixed IP.
    if access != AccessMode.direct and not record.get("on_cluster_network"):
        # Only SSH is open to the operator on such clusters; the scheduler's port is open to members alone.
        raise DataopsError(
            f"cluster {name!r} is reached through its scheduler's floating IP (access: {access.value}), which opens "
            f"only SSH to this machine: run from a machine on the cluster's network, or create it with access: direct"
        )
    return url, tls.dask_security(tls.issue_certificate(state.tls_dir, tls.CLIENT_NAME))
