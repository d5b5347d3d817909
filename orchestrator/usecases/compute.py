"""Where a use case computes: a named cluster (over TLS, with its own certificate), a scheduler address, or a
LocalCluster on this machine."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from distributed import Client

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.config import setting
from orchestrator.dask_client import dask_client
from orchestrator.errors import DataopsError


@dataclass(frozen=True)
class ComputeTarget:
    """The scheduler to use (None: a LocalCluster), its TLS security, and the cluster it belongs to if named."""

    address: str | None
    security: object = None
    cluster: str | None = None


def compute_target(scheduler: str | None, cluster: str | None, store: ArtifactStore | None = None) -> ComputeTarget:
    """Resolve ``--scheduler`` / ``--cluster`` (and the ``scheduler`` setting) into one target.

    Raises:
        DataopsError: both were given; or a cluster was named with a store its nodes cannot reach.
        ClusterNotFound: no such cluster.
    """
    if not cluster:
        return ComputeTarget(setting("scheduler", scheduler) or None)
    if scheduler:
        raise DataopsError("--cluster and --scheduler name two places to run; give one")
    if store is not None and store.url_signer() is None:
        raise DataopsError(f"a run on cluster {cluster!r} needs an artifact store its nodes reach, not the local "
                           f"folder {store.uri}: give --store swift://CONTAINER[/PREFIX]")
    from orchestrator.clusters.connection import scheduler_connection

    address, security = scheduler_connection(cluster)
    return ComputeTarget(address, security, cluster)


@contextmanager
def open_client(target: ComputeTarget) -> Iterator[Client]:
    """A Dask client on ``target``; a named cluster's time-to-live starts again once the work is done."""
    with dask_client(target.address, security=target.security) as client:
        yield client
    if target.cluster:
        from orchestrator.usecases.clusters import touch_cluster

        touch_cluster(target.cluster)
