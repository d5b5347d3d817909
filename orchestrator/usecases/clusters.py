"""Cluster use cases behind ``dataops cluster``: create from a file, list, show, scale, delete, sweep, reach a node
by SSH and fill a wheelhouse. The CLI parses options, calls one function here and renders what it returns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from orchestrator.artifacts.records import SharedRecords
from orchestrator.clusters import provision
from orchestrator.clusters.cloud import ClusterCloud
from orchestrator.clusters.spec import load_cluster_spec
from orchestrator.clusters.state import ClusterState, cluster_state, known_clusters
from orchestrator.config import setting
from orchestrator.errors import DataopsError
from orchestrator.openstack.stacks import Leftover


def open_cloud(cloud_name: str | None) -> ClusterCloud:
    """Connect to the cloud named in clouds.yaml (or ``OS_CLOUD``) and return the cluster operations on it.

    Args:
        cloud_name: The clouds.yaml entry; None uses ``OS_CLOUD``.

    Returns:
        The stack, key pair and tagged-resource operations on that cloud.

    Raises:
        CloudError: The cloud is unknown, unreachable or refuses the credentials.
    """
    from orchestrator.openstack import connect
    from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud

    return OpenStackClusterCloud(connect(cloud_name))


def open_records(cloud_name: str | None, kind: str = "clusters") -> SharedRecords | None:
    """The shared records of ``kind`` (clusters, endpoints) in the cloud's private ``records_container`` (None
    when that setting is ``none``).

    Args:
        cloud_name: The clouds.yaml entry; None uses ``OS_CLOUD``.
        kind: ``clusters`` or ``endpoints``.
    """
    container = setting("records_container")
    if container.lower() == "none":
        return None
    from orchestrator.artifacts.swift import SwiftStore

    return SharedRecords(SwiftStore(container, cloud=cloud_name), kind)


def create_cluster(
    name: str,
    file: Path,
    progress: provision.Progress,
    *,
    ttl: str | None = None,
    cloud_name: str | None = None,
    wheelhouse: Path | None = None,
    stack_timeout_s: float | None = None,
) -> provision.ClusterReady:
    """Create cluster ``name`` from a cluster file, on the cloud given or else the file's.

    Args:
        name: The cluster's name; it overrides the file's.
        file: The cluster file (cluster.yaml).
        progress: Callbacks for Heat events, Ansible tasks and steps.
        ttl: Time-to-live after the last use, overriding the file's (already checked as a duration).
        cloud_name: The clouds.yaml entry; None uses the file's, then ``OS_CLOUD``.
        wheelhouse: Wheels for nodes without internet egress.
        stack_timeout_s: Longest wait for the stack; None reads the ``stack_timeout`` setting.

    Returns:
        The ready cluster with the seconds spent in Heat, in configuration and in total.

    Raises:
        SpecError: The cluster file is malformed (file, line and field named).
        DataopsError: The cluster exists already, its stack failed or its configuration failed.
    """
    spec = load_cluster_spec(file)
    updates = {"name": name, **({"ttl": ttl} if ttl else {})}
    spec = spec.model_validate({**spec.model_dump(mode="json"), **updates})
    cloud_name = cloud_name or spec.cloud
    return provision.create_cluster(spec, open_cloud(cloud_name), progress, wheelhouse=wheelhouse,
                                    stack_timeout_s=stack_timeout_s, records=open_records(cloud_name))


def _row(state: ClusterState) -> dict:
    record = state.load_record()
    spec = record["spec"]
    return {
        "name": state.name,
        "status": record.get("status", "?"),
        "workers": spec["workers"]["count"],
        "gpu_workers": (spec.get("gpu_workers") or {}).get("count", 0),
        "scheduler": (record.get("outputs") or {}).get("scheduler_url", ""),
        "created_at": record.get("created_at", ""),
        "ttl": spec.get("ttl"),
    }


def _shared_row(record: dict) -> dict:
    return {key: record.get(key) for key in ("name", "status", "workers", "gpu_workers", "created_at", "ttl")} | {
        "scheduler": record.get("scheduler_url", ""), "last_used": record.get("last_used"),
        "created_on": record.get("created_on")}


def list_clusters(shared: bool = False, cloud_name: str | None = None) -> list[dict]:
    """The clusters created from this machine, one row each: name, status, worker counts, scheduler, creation
    time and time-to-live; with ``shared``, also those every machine of the cloud sees (``created_on`` says
    where each was created; ``here`` whether this machine holds its keys)."""
    rows = {state.name: _row(state) | {"here": True} for state in known_clusters()}
    records = open_records(cloud_name) if shared else None
    for name, record in (records.all() if records is not None else {}).items():
        rows[name] = {**_shared_row(record), **rows.get(name, {"here": False})}
    return [rows[name] for name in sorted(rows)]


def describe_cluster(name: str) -> dict:
    """A cluster's status, URLs, nodes and clock, as ``dataops cluster show`` prints them.

    Raises:
        ClusterNotFound: No such cluster on this machine.
    """
    record = cluster_state(name).load_record()
    outputs = record.get("outputs") or {}
    return {
        "name": name,
        "status": record.get("status"),
        "scheduler_url": outputs.get("scheduler_url"),
        "dashboard_url": outputs.get("dashboard_url"),
        "scheduler_public_address": outputs.get("scheduler_public_address"),
        "nodes": outputs.get("nodes", []),
        "created_at": record.get("created_at"),
        "last_used": record.get("last_used"),
        "ttl": record["spec"].get("ttl"),
    }


def scale_cluster(
    name: str,
    workers: int,
    gpu_workers: int | None,
    progress: provision.Progress,
    *,
    wheelhouse: Path | None = None,
    stack_timeout_s: float | None = None,
) -> provision.ClusterReady:
    """Change a cluster's worker counts on the cloud it was created on.

    Args:
        name: The cluster.
        workers: The new number of CPU workers.
        gpu_workers: The new number of GPU workers; None keeps the current one.
        progress: Callbacks for Heat events, Ansible tasks and steps.
        wheelhouse: Wheels for nodes without internet egress.
        stack_timeout_s: Longest wait for the stack update; None reads the ``stack_timeout`` setting.

    Returns:
        The cluster with its nodes after the change.

    Raises:
        ClusterNotFound: No such cluster on this machine.
        DataopsError: The stack update or the configuration of the new nodes failed.
    """
    spec = cluster_state(name).load_spec()
    ready = provision.scale_cluster(
        name, open_cloud(spec.cloud), workers, gpu_workers, progress, wheelhouse=wheelhouse,
        stack_timeout_s=stack_timeout_s,
    )
    records = open_records(spec.cloud)
    if records is not None and records.get(name) is not None:
        scaled = cluster_state(name).load_spec()
        records.update(name, workers=scaled.workers.count, gpu_workers=scaled.gpu_worker_count)
    return ready


def delete_cluster(name: str, cloud_name: str | None = None, stack_timeout_s: float | None = None) -> list[Leftover]:
    """Delete a cluster and everything tagged with it; deleting a deleted cluster succeeds.

    Args:
        name: The cluster.
        cloud_name: The clouds.yaml entry; None uses the cluster's, then ``OS_CLOUD``.
        stack_timeout_s: Longest wait for the stack deletion; None reads the ``stack_delete_timeout`` setting.

    Returns:
        The leftovers the stack had not removed and that were swept.
    """
    state = cluster_state(name)
    cloud_name = cloud_name or (state.load_spec().cloud if state.exists() else None)
    return provision.delete_cluster(name, open_cloud(cloud_name), stack_timeout_s, records=open_records(cloud_name))


def sweep_clusters(
    cloud_name: str | None, expired: bool, on_expired: Callable[[str], None] = lambda name: None
) -> list[Leftover]:
    """Delete the clusters past their time-to-live (when ``expired``), then the orphans of earlier clusters.

    Args:
        cloud_name: The clouds.yaml entry; None uses ``OS_CLOUD``.
        expired: Also delete the clusters idle past their time-to-live: those of this machine and those of the
            shared records, so that a schedule runner enforces the time-to-live of clusters made elsewhere.
        on_expired: Called with each expired cluster's name before it is deleted.

    Returns:
        The orphaned resources deleted.
    """
    cloud = open_cloud(cloud_name)
    if expired:
        records = open_records(cloud_name)
        for name in provision.expired_clusters(records=records):
            on_expired(name)
            provision.delete_cluster(name, cloud, records=records)
    return provision.sweep_orphans(cloud)


def touch_cluster(name: str) -> None:
    """A pipeline just ran on cluster ``name``: its time-to-live starts again, here and in its shared record."""
    state = cluster_state(name)
    provision.touch_cluster(name, open_records(state.load_spec().cloud if state.exists() else None))


def ssh_command(name: str, node: str | None = None) -> list[str]:
    """The ``ssh`` command line that opens a session on a node, through the scheduler's floating IP when the
    cluster is reached through it.

    Args:
        name: The cluster.
        node: The node's name; None is the scheduler.

    Returns:
        The argv, starting with ``ssh``.

    Raises:
        ClusterNotFound: No such cluster on this machine.
        DataopsError: The cluster has no such node; the message lists the nodes it has.
    """
    state = cluster_state(name)
    record = state.load_record()
    spec = state.load_spec()
    outputs = record.get("outputs") or {}
    nodes = {n["name"]: n for n in outputs.get("nodes", [])}
    target = node or next((n for n, v in nodes.items() if v["role"] == "scheduler"), None)
    if target not in nodes:
        raise DataopsError(f"cluster {name} has no node {target!r}; nodes: {', '.join(nodes) or 'none'}")
    argv = ["ssh", "-i", str(state.ssh_key), "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=accept-new"]
    public = outputs.get("scheduler_public_address")
    if public and spec.access.value != "direct":
        argv += ["-J", f"{spec.ssh_user}@{public}"]
    argv.append(f"{spec.ssh_user}@{nodes[target]['address']}")
    return argv


def fill_wheelhouse(directory: Path, python_version: str) -> tuple[int, list[str]]:
    """Download into ``directory`` the wheels cluster nodes install, pinned to this machine's versions.

    Args:
        directory: The folder to fill (wheels already there are reused).
        python_version: The Python version of the nodes' image, such as ``3.11``.

    Returns:
        The number of wheels in the folder, and the requirements they satisfy.
    """
    from orchestrator.clusters.wheelhouse import build_wheelhouse, pinned_requirements

    requirements = pinned_requirements()
    build_wheelhouse(requirements, directory, python_version)
    return len(list(directory.glob("*.whl"))), requirements
