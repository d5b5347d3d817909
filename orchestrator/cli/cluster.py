"""``dataops cluster``: create, list, show, scale, delete, sweep and ssh into Dask clusters on OpenStack."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from orchestrator.cli.console import emit_json, err, out
from orchestrator.clusters import provision
from orchestrator.clusters.spec import load_cluster_spec, parse_duration
from orchestrator.clusters.state import cluster_state, known_clusters
from orchestrator.errors import DataopsError

cluster_app = typer.Typer(help="Create, scale and delete Dask clusters on OpenStack.", no_args_is_help=True)


def open_cloud(cloud_name: str | None):
    """Connect to the cloud named in clouds.yaml (or OS_CLOUD) and return the cluster operations on it."""
    from orchestrator.openstack import connect
    from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud

    return OpenStackClusterCloud(connect(cloud_name))


def _progress() -> provision.Progress:
    def stack_event(event):
        reason = f": {event.reason}" if event.reason and "FAILED" in event.status else ""
        err.print(f"  heat  {event.resource:<28} {event.status}{reason}", markup=False)

    def task(event):
        if event.status in ("changed", "failed", "unreachable"):
            message = f": {event.message}" if event.message else ""
            err.print(f"  {event.host:<28} {event.status:<11} {event.task}{message}", markup=False)

    return provision.Progress(on_stack_event=stack_event, on_task=task, on_step=lambda m: err.print(f"[bold]{m}[/bold]"))


@cluster_app.command("create")
def create(
    name: str = typer.Argument(..., help="Cluster name (overrides the file's name)."),
    file: Path = typer.Option(..., "--file", "-f", help="Cluster file (cluster.yaml)."),
    ttl: str | None = typer.Option(None, "--ttl", help="Delete the cluster after this long idle, e.g. 8h."),
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: the file's, then OS_CLOUD)."),
    wheelhouse: Path | None = typer.Option(None, "--wheelhouse", help="Wheels for nodes without internet egress."),
) -> None:
    """Create a cluster: Heat stack, then Ansible configuration, then wait for every worker."""
    spec = load_cluster_spec(file)
    updates = {"name": name}
    if ttl:
        parse_duration(ttl)
        updates["ttl"] = ttl
    spec = spec.model_validate({**spec.model_dump(mode="json"), **updates})
    ready = provision.create_cluster(spec, open_cloud(cloud or spec.cloud), _progress(), wheelhouse=wheelhouse)
    t = ready.timings
    err.print(
        f"Cluster {ready.name} ready: {len(ready.nodes)} nodes, scheduler {ready.scheduler_url}, "
        f"dashboard {ready.dashboard_url} (Heat {t['heat']:.0f} s, configuration {t['configure']:.0f} s, "
        f"total {t['total']:.0f} s)",
        markup=False,
    )


@cluster_app.command("list")
def list_clusters(as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout.")) -> None:
    """List the clusters created from this machine."""
    rows = []
    for state in known_clusters():
        record = state.load_record()
        rows.append(
            {
                "name": state.name,
                "status": record.get("status", "?"),
                "workers": record["spec"]["workers"]["count"],
                "gpu_workers": (record["spec"].get("gpu_workers") or {}).get("count", 0),
                "scheduler": (record.get("outputs") or {}).get("scheduler_url", ""),
                "created_at": record.get("created_at", ""),
                "ttl": record["spec"].get("ttl"),
            }
        )
    if as_json:
        emit_json(rows)
        return
    if not rows:
        err.print("No clusters.")
        return
    for row in rows:
        out.print(
            f"{row['name']:<24} {row['status']:<12} workers={row['workers']} gpu_workers={row['gpu_workers']} "
            f"{row['scheduler']}",
            markup=False,
        )


@cluster_app.command("show")
def show(name: str = typer.Argument(..., help="Cluster name.")) -> None:
    """Show a cluster's nodes, addresses and URLs as JSON."""
    record = cluster_state(name).load_record()
    outputs = record.get("outputs") or {}
    emit_json(
        {
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
    )


@cluster_app.command("scale")
def scale(
    name: str = typer.Argument(..., help="Cluster name."),
    workers: int = typer.Option(..., "--workers", min=0, help="New number of CPU workers."),
    gpu_workers: int | None = typer.Option(None, "--gpu-workers", min=0, help="New number of GPU workers."),
    wheelhouse: Path | None = typer.Option(None, "--wheelhouse", help="Wheels for nodes without internet egress."),
) -> None:
    """Change the number of workers: a stack update, then configuration of the new nodes only."""
    spec = cluster_state(name).load_spec()
    ready = provision.scale_cluster(name, open_cloud(spec.cloud), workers, gpu_workers, _progress(), wheelhouse=wheelhouse)
    err.print(f"Cluster {name} now has {len(ready.nodes)} nodes.", markup=False)


@cluster_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Cluster name."),
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: the cluster's, then OS_CLOUD)."),
) -> None:
    """Delete a cluster and everything tagged with it; deleting a deleted cluster succeeds."""
    state = cluster_state(name)
    cloud_name = cloud or (state.load_spec().cloud if state.exists() else None)
    swept = provision.delete_cluster(name, open_cloud(cloud_name))
    for leftover in swept:
        err.print(f"  swept {leftover.kind} {leftover.id}", markup=False)
    err.print(f"Cluster {name} deleted.", markup=False)


@cluster_app.command("sweep")
def sweep(
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: OS_CLOUD)."),
    expired: bool = typer.Option(True, "--expired/--no-expired", help="Also delete clusters past their time-to-live."),
) -> None:
    """Delete orphans of earlier clusters, and clusters idle past their time-to-live."""
    connection = open_cloud(cloud)
    if expired:
        for name in provision.expired_clusters():
            err.print(f"Cluster {name} is past its time-to-live: deleting it", markup=False)
            provision.delete_cluster(name, connection)
    swept = provision.sweep_orphans(connection)
    for leftover in swept:
        err.print(f"  swept {leftover.kind} {leftover.id} of cluster {leftover.cluster}", markup=False)
    err.print(f"Swept {len(swept)} orphaned resources.", markup=False)


@cluster_app.command("ssh")
def ssh(
    name: str = typer.Argument(..., help="Cluster name."),
    node: str | None = typer.Argument(None, help="Node name (default: the scheduler)."),
) -> None:
    """Open an SSH session on a node, through the scheduler's floating IP when the cluster has one."""
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
    os.execvp("ssh", argv)


@cluster_app.command("wheelhouse")
def wheelhouse(
    directory: Path = typer.Argument(..., help="Folder to fill with wheels (reused by later calls)."),
    python_version: str = typer.Option("3.11", "--python-version", help="Python version of the nodes' image."),
) -> None:
    """Download the wheels cluster nodes install (Dask and what pipelines import, pinned to this machine's versions),
    for 'cluster create --wheelhouse' on clouds whose nodes cannot reach a package index."""
    from orchestrator.clusters.wheelhouse import build_wheelhouse, pinned_requirements

    requirements = pinned_requirements()
    build_wheelhouse(requirements, directory, python_version)
    err.print(f"{len(list(directory.glob('*.whl')))} wheels in {directory} for {', '.join(requirements)}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``cluster`` command group to the root app."""
    app.add_typer(cluster_app, name="cluster")
