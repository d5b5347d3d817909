"""Cluster use cases: create (stack -> inventory -> playbook -> ready), scale, delete, sweep, expire."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.ansible.inventory import Node, SshAccess, build_inventory, nodes_from_output
from orchestrator.ansible.playbook import PlaybookResult, TaskEvent, run_playbook
from orchestrator.artifacts.records import SharedRecords
from orchestrator.clusters import tls
from orchestrator.clusters.cloud import ClusterCloud
from orchestrator.clusters.spec import AccessMode, ClusterSpec, environment_files, heat_parameters
from orchestrator.clusters.state import ClusterState, cluster_state, known_clusters
from orchestrator.clusters.wheelhouse import pack_wheelhouse, pinned_requirements
from orchestrator.config import duration_setting
from orchestrator.durations import parse_duration
from orchestrator.errors import CloudError, DataopsError, StackFailed
from orchestrator.openstack.stacks import Leftover, StackEvent, cluster_tag

TEMPLATES = Path(__file__).resolve().parents[2] / "heat_templates"
CLUSTER_TEMPLATE = TEMPLATES / "cluster.yaml"
SCHEDULER_PORT = 8786

Configure = Callable[..., PlaybookResult]


@dataclass
class Progress:
    """Callbacks a caller (the CLI) gives to see what happens; all optional."""

    on_stack_event: Callable[[StackEvent], None] = lambda event: None
    on_task: Callable[[TaskEvent], None] = lambda event: None
    on_step: Callable[[str], None] = lambda message: None


@dataclass
class ClusterReady:
    """A configured cluster and how long each phase took."""

    name: str
    scheduler_url: str
    dashboard_url: str
    nodes: list[Node]
    timings: dict[str, float] = field(default_factory=dict)


def keypair_name(cluster: str) -> str:
    """Name of the Nova key pair created for ``cluster``."""
    return f"dataops-{cluster}"


def _extravars(state: ClusterState, spec: ClusterSpec, scheduler: Node, wheelhouse: Path | None) -> dict:
    return {
        "common_python_packages": pinned_requirements(),
        "common_wheelhouse_archive": str(pack_wheelhouse(wheelhouse)) if wheelhouse else "",
        "common_tls_source_dir": str(state.tls_dir),
        "dask_worker_scheduler_url": f"tls://{scheduler.address}:{SCHEDULER_PORT}",
        "dask_cuda_worker_as_cpu": bool(spec.gpu_workers and spec.gpu_workers.as_cpu),
    }


def _shared_record(spec: ClusterSpec, outputs: dict, status: str, **fields) -> dict:
    """What every machine holding the cloud's credentials may know of the cluster: no key, no certificate."""
    return {"name": spec.name, "cloud": spec.cloud, "status": status, "ttl": spec.ttl,
            "workers": spec.workers.count, "gpu_workers": spec.gpu_worker_count,
            "scheduler_url": str(outputs.get("scheduler_url", "")), "created_on": socket.gethostname(), **fields}


def _access(state: ClusterState, spec: ClusterSpec, outputs: dict) -> SshAccess:
    public = outputs.get("scheduler_public_address")
    if spec.access in (AccessMode.floating_ip, AccessMode.jump) and not public:
        raise CloudError(f"cluster {spec.name}: access '{spec.access.value}' but the stack gave the scheduler no floating IP")
    # Every connection goes through the scheduler's floating IP: only the scheduler is exposed.
    jump = f"{spec.ssh_user}@{public}" if spec.access != AccessMode.direct else None
    return SshAccess(private_key=state.ssh_key, user=spec.ssh_user, jump_host=jump)


def _nodes(outputs: dict) -> list[Node]:
    try:
        return nodes_from_output(outputs.get("nodes") or [])
    except ValueError as exc:
        raise CloudError(f"the stack's nodes output is unusable: {exc}") from exc


def _issue_certificates(state: ClusterState, nodes: list[Node]) -> None:
    tls.ensure_ca(state.tls_dir, state.name)
    for node in nodes:
        tls.issue_certificate(state.tls_dir, node.name, [node.address])
    tls.issue_certificate(state.tls_dir, tls.CLIENT_NAME)


def create_cluster(
    spec: ClusterSpec,
    cloud: ClusterCloud,
    progress: Progress | None = None,
    configure: Configure | None = None,
    wheelhouse: Path | None = None,
    stack_timeout_s: float | None = None,
    records: SharedRecords | None = None,
) -> ClusterReady:
    """Create the stack of ``spec``, configure its nodes and return once every worker is registered.

    A stack that fails is deleted with everything tagged with the cluster, so nothing is left behind.

    Args:
        spec: The cluster.
        cloud: The cloud to create it on.
        progress: Callbacks for Heat events, Ansible tasks and steps.
        configure: Runs the site playbook; None is ansible-runner.
        wheelhouse: Directory of wheels copied to nodes that cannot reach a package index.
        stack_timeout_s: Longest wait for the stack; None reads the ``stack_timeout`` setting.
        records: Where the cluster's shared record goes (its clock, for a runner enforcing its time-to-live).

    Returns:
        The ready cluster with the seconds spent in Heat, in configuration and in total.

    Raises:
        DataopsError: The cluster exists already, the stack failed (resource and reason named), or
            configuration failed (host, task and reason named).
    """
    progress = progress or Progress()
    configure = configure or run_playbook
    stack_timeout_s = stack_timeout_s or duration_setting("stack_timeout")
    started = time.monotonic()
    state = cluster_state(spec.name)
    if state.exists() or cloud.find_stack(spec.name) is not None:
        raise DataopsError(f"cluster {spec.name!r} already exists; delete it first or choose another name")
    public_key = state.ensure_ssh_key()
    state.save(spec, status="creating")
    try:
        progress.on_step("Creating key pair and stack")
        cloud.create_keypair(keypair_name(spec.name), public_key, spec.name)
        heat_started = time.monotonic()
        cloud.create_stack(
            spec.name,
            CLUSTER_TEMPLATE,
            [TEMPLATES / f for f in environment_files(spec)],
            heat_parameters(spec, keypair_name(spec.name)),
            tags=["dataops", cluster_tag(spec.name)],
        )
        cloud.wait_stack(spec.name, "CREATE", progress.on_stack_event, stack_timeout_s)
        heat_seconds = time.monotonic() - heat_started
    except DataopsError as failure:
        progress.on_step("Stack failed: deleting it and everything tagged with the cluster")
        try:
            delete_cluster(spec.name, cloud)
        except DataopsError as cleanup:  # the cloud still failing: say both, the first cause first
            raise DataopsError(f"{failure}; deleting what the create made failed too ({cleanup}): run `dataops "
                               f"cluster delete {spec.name}` once the cloud answers again") from failure
        raise
    outputs = cloud.stack_outputs(spec.name)
    nodes = _nodes(outputs)
    state.save(spec, status="configuring", outputs=outputs)
    progress.on_step(f"Configuring {len(nodes)} nodes")
    configure_seconds = _configure_nodes(configure, state, spec, outputs, nodes, nodes, wheelhouse, progress)
    now = datetime.now(timezone.utc).isoformat()
    state.save(spec, status="ready", outputs=outputs, last_used=now)
    if records is not None:
        records.put(spec.name, _shared_record(spec, outputs, "ready", created_at=now, last_used=now))
    total = time.monotonic() - started
    return ClusterReady(
        name=spec.name,
        scheduler_url=str(outputs.get("scheduler_url", "")),
        dashboard_url=str(outputs.get("dashboard_url", "")),
        nodes=nodes,
        timings={"heat": heat_seconds, "configure": configure_seconds, "total": total,
                 "overhead": total - heat_seconds - configure_seconds},
    )


def scale_cluster(
    name: str,
    cloud: ClusterCloud,
    workers: int,
    gpu_workers: int | None = None,
    progress: Progress | None = None,
    configure: Configure | None = None,
    wheelhouse: Path | None = None,
    stack_timeout_s: float | None = None,
) -> ClusterReady:
    """Change the worker counts with a stack update, then configure only the nodes the update added.

    Scaling down removes the highest-numbered workers first (through the groups' removal policies).

    Args:
        name: The cluster.
        cloud: The cloud it runs on.
        workers: The new number of CPU workers.
        gpu_workers: The new number of GPU workers; None keeps the current one.
        progress: Callbacks for Heat events, Ansible tasks and steps.
        configure: Runs the site playbook; None is ansible-runner.
        wheelhouse: Directory of wheels copied to nodes that cannot reach a package index.
        stack_timeout_s: Longest wait for the stack update; None reads the ``stack_timeout`` setting.

    Returns:
        The cluster with its nodes, and the seconds spent in Heat and in configuration.

    Raises:
        ClusterNotFound: No such cluster on this machine.
        DataopsError: The update or the configuration of the new nodes failed.
    """
    progress = progress or Progress()
    configure = configure or run_playbook
    stack_timeout_s = stack_timeout_s or duration_setting("stack_timeout")
    state = cluster_state(name)
    old_spec = state.load_spec()
    before = {n.name for n in _nodes(state.load_record().get("outputs", {}))}
    spec = old_spec.with_counts(workers, gpu_workers)
    parameters = heat_parameters(spec, keypair_name(name))
    parameters["worker_removal_list"] = ",".join(
        str(i) for i in range(spec.workers.count, old_spec.workers.count)
    )
    parameters["gpu_worker_removal_list"] = ",".join(
        str(i) for i in range(spec.gpu_worker_count, old_spec.gpu_worker_count)
    )
    progress.on_step(f"Updating stack {name}: {spec.workers.count} workers, {spec.gpu_worker_count} GPU workers")
    heat_started = time.monotonic()
    cloud.update_stack(name, CLUSTER_TEMPLATE, [TEMPLATES / f for f in environment_files(spec)], parameters)
    cloud.wait_stack(name, "UPDATE", progress.on_stack_event, stack_timeout_s)
    heat_seconds = time.monotonic() - heat_started
    outputs = cloud.stack_outputs(name)
    nodes = _nodes(outputs)
    added = [n for n in nodes if n.name not in before]
    state.save(spec, outputs=outputs)
    configure_seconds = 0.0
    if added:
        progress.on_step(f"Configuring {len(added)} new nodes: {', '.join(n.name for n in added)}")
        configure_seconds = _configure_nodes(configure, state, spec, outputs, nodes, added, wheelhouse, progress)
    return ClusterReady(
        name=name,
        scheduler_url=str(outputs.get("scheduler_url", "")),
        dashboard_url=str(outputs.get("dashboard_url", "")),
        nodes=nodes,
        timings={"heat": heat_seconds, "configure": configure_seconds},
    )


def _configure_nodes(configure, state, spec, outputs, nodes, targets, wheelhouse, progress) -> float:
    """Issue certificates for ``targets`` and run the site playbook on them only (the inventory lists every node,
    so the new ones learn the scheduler); return the seconds it took."""
    _issue_certificates(state, targets)
    started = time.monotonic()
    configure(
        "site.yml",
        build_inventory(nodes, _access(state, spec, outputs)),
        _extravars(state, spec, nodes[0], wheelhouse),
        limit=None if targets is nodes else ",".join(n.name for n in targets),
        on_event=progress.on_task,
    )
    return time.monotonic() - started


def delete_cluster(name: str, cloud: ClusterCloud, stack_timeout_s: float | None = None,
                   records: SharedRecords | None = None) -> list[Leftover]:
    """Delete the cluster's stack, then everything still tagged with it, then its local state and shared record.
    Idempotent.

    Args:
        name: The cluster.
        cloud: The cloud it runs on.
        stack_timeout_s: Longest wait for the stack deletion; None reads the ``stack_delete_timeout`` setting.
        records: Where the cluster's shared record is kept.

    Returns:
        The leftovers the stack had not removed and that were swept.

    Raises:
        StackFailed: Heat could not delete the stack, even after the cluster's servers it may have lost track of were
            deleted (the resource and the cloud's reason named).
        StackTimedOut: The stack was still being deleted after ``stack_timeout_s``.
    """
    timeout_s = stack_timeout_s or duration_setting("stack_delete_timeout")
    swept = []
    try:
        cloud.delete_stack(name, timeout_s)
    except StackFailed:
        # Heat loses a server it was building when its engine stops mid-create: the server keeps the stack's port
        # bound, and Heat may not delete a bound port. With those servers deleted first, the stack deletes.
        for leftover in cloud.list_leftovers(name):
            if leftover.kind == "server" and leftover not in swept:
                cloud.delete_leftover(leftover)
                swept.append(leftover)
        cloud.delete_stack(name, timeout_s)
    for leftover in cloud.list_leftovers(name):
        cloud.delete_leftover(leftover)
        swept.append(leftover)
    cluster_state(name).remove()
    if records is not None:
        records.delete(name)
    return swept


def sweep_orphans(cloud: ClusterCloud) -> list[Leftover]:
    """Delete resources tagged with a dataops cluster whose stack no longer exists.

    Returns:
        The resources deleted.
    """
    live = {s.name for s in cloud.list_stacks("dataops")}
    swept = []
    for leftover in cloud.list_leftovers(None):
        if leftover.cluster not in live:
            cloud.delete_leftover(leftover)
            swept.append(leftover)
    return swept


def expired_clusters(now: datetime | None = None, records: SharedRecords | None = None) -> list[str]:
    """Names of the clusters whose time-to-live has passed since they were last used: those of this machine, and
    those of the shared records (a cluster used from any machine has its latest use counted)."""
    now = now or datetime.now(timezone.utc)
    clocks: dict[str, tuple[str, datetime]] = {}

    def note(name: str, ttl: str | None, last_used: str | None) -> None:
        if ttl and last_used:
            last = datetime.fromisoformat(last_used)
            if name not in clocks or last > clocks[name][1]:
                clocks[name] = (ttl, last)

    for state in known_clusters():
        record = state.load_record()
        note(state.name, record.get("spec", {}).get("ttl"), record.get("last_used") or record.get("created_at"))
    for name, record in (records.all() if records is not None else {}).items():
        note(name, record.get("ttl"), record.get("last_used") or record.get("created_at"))
    return sorted(name for name, (ttl, last) in clocks.items()
                  if (now - last).total_seconds() > parse_duration(ttl, f"the ttl of cluster {name}"))


def touch_cluster(name: str, records: SharedRecords | None = None) -> None:
    """Record that the cluster was just used (a pipeline ran on it), which restarts its time-to-live: here if this
    machine created it, and in the shared record."""
    now = datetime.now(timezone.utc).isoformat()
    state = cluster_state(name)
    if state.exists():
        state.save(state.load_spec(), last_used=now)
    if records is not None and records.get(name) is not None:
        records.update(name, last_used=now)
