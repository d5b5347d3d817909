"""``dataops cluster``: create, list, show, scale, delete, sweep and ssh into Dask clusters on OpenStack."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from orchestrator.cli.console import emit_json, err, out
from orchestrator.cli.progress import console_progress
from orchestrator.cli.timeouts import stack_timeout_s, timeout_option
from orchestrator.durations import parse_duration
from orchestrator.usecases import clusters

cluster_app = typer.Typer(help="Create, scale and delete Dask clusters on OpenStack.", no_args_is_help=True)


@cluster_app.command("create")
def create(
    name: str = typer.Argument(..., help="Cluster name (overrides the file's name)."),
    file: Path = typer.Option(..., "--file", "-f", help="Cluster file (cluster.yaml)."),
    ttl: str | None = typer.Option(None, "--ttl", help="Delete the cluster after this long idle, e.g. 8h."),
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: the file's, then OS_CLOUD)."),
    wheelhouse: Path | None = typer.Option(None, "--wheelhouse", help="Wheels for nodes without internet egress."),
    timeout: str | None = timeout_option("stack_timeout"),
) -> None:
    """Create a cluster: Heat stack, then Ansible configuration, then wait for every worker."""
    if ttl:
        parse_duration(ttl, "--ttl")
    ready = clusters.create_cluster(
        name, file, console_progress(), ttl=ttl, cloud_name=cloud, wheelhouse=wheelhouse,
        stack_timeout_s=stack_timeout_s("stack_timeout", timeout),
    )
    t = ready.timings
    err.print(
        f"Cluster {ready.name} ready: {len(ready.nodes)} nodes, scheduler {ready.scheduler_url}, "
        f"dashboard {ready.dashboard_url} (Heat {t['heat']:.0f} s, configuration {t['configure']:.0f} s, "
        f"total {t['total']:.0f} s)",
        markup=False,
    )


@cluster_app.command("list")
def list_clusters(
    as_json: bool = typer.Option(False, "--json", help="Print JSON on stdout."),
    shared: bool = typer.Option(False, "--shared", help="Also the clusters made from other machines (the cloud's "
                                                        "shared records)."),
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry for --shared (default: OS_CLOUD)."),
) -> None:
    """List the clusters created from this machine (with --shared, every cluster of the cloud's records)."""
    rows = clusters.list_clusters(shared, cloud)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        err.print("No clusters.")
        return
    for row in rows:
        where = "" if row.get("here") else f"  (made on {row.get('created_on') or 'another machine'})"
        out.print(
            f"{row['name']:<24} {row['status']:<12} workers={row['workers']} gpu_workers={row['gpu_workers']} "
            f"{row['scheduler']}{where}",
            markup=False,
        )


@cluster_app.command("show")
def show(name: str = typer.Argument(..., help="Cluster name.")) -> None:
    """Show a cluster's nodes, addresses and URLs as JSON."""
    emit_json(clusters.describe_cluster(name))


@cluster_app.command("scale")
def scale(
    name: str = typer.Argument(..., help="Cluster name."),
    workers: int = typer.Option(..., "--workers", min=0, help="New number of CPU workers."),
    gpu_workers: int | None = typer.Option(None, "--gpu-workers", min=0, help="New number of GPU workers."),
    wheelhouse: Path | None = typer.Option(None, "--wheelhouse", help="Wheels for nodes without internet egress."),
    timeout: str | None = timeout_option("stack_timeout"),
) -> None:
    """Change the number of workers: a stack update, then configuration of the new nodes only."""
    ready = clusters.scale_cluster(
        name, workers, gpu_workers, console_progress(), wheelhouse=wheelhouse,
        stack_timeout_s=stack_timeout_s("stack_timeout", timeout),
    )
    err.print(f"Cluster {name} now has {len(ready.nodes)} nodes.", markup=False)


@cluster_app.command("delete")
def delete(
    name: str = typer.Argument(..., help="Cluster name."),
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: the cluster's, then OS_CLOUD)."),
    timeout: str | None = timeout_option("stack_delete_timeout"),
) -> None:
    """Delete a cluster and everything tagged with it; deleting a deleted cluster succeeds."""
    swept = clusters.delete_cluster(name, cloud, stack_timeout_s("stack_delete_timeout", timeout))
    for leftover in swept:
        err.print(f"  swept {leftover.kind} {leftover.id}", markup=False)
    err.print(f"Cluster {name} deleted.", markup=False)


@cluster_app.command("sweep")
def sweep(
    cloud: str | None = typer.Option(None, "--cloud", help="clouds.yaml entry (default: OS_CLOUD)."),
    expired: bool = typer.Option(True, "--expired/--no-expired", help="Also delete clusters past their time-to-live."),
) -> None:
    """Delete orphans of earlier clusters, and clusters idle past their time-to-live."""

    def deleting(name: str) -> None:
        err.print(f"Cluster {name} is past its time-to-live: deleting it", markup=False)

    swept = clusters.sweep_clusters(cloud, expired, on_expired=deleting)
    for leftover in swept:
        err.print(f"  swept {leftover.kind} {leftover.id} of cluster {leftover.cluster}", markup=False)
    err.print(f"Swept {len(swept)} orphaned resources.", markup=False)


@cluster_app.command("ssh")
def ssh(
    name: str = typer.Argument(..., help="Cluster name."),
    node: str | None = typer.Argument(None, help="Node name (default: the scheduler)."),
) -> None:
    """Open an SSH session on a node, through the scheduler's floating IP when the cluster has one."""
    os.execvp("ssh", clusters.ssh_command(name, node))


@cluster_app.command("wheelhouse")
def wheelhouse(
    directory: Path = typer.Argument(..., help="Folder to fill with wheels (reused by later calls)."),
    python_version: str = typer.Option("3.11", "--python-version", help="Python version of the nodes' image."),
) -> None:
    """Download the wheels cluster nodes install (Dask and what pipelines import, pinned to this machine's versions),
    for 'cluster create --wheelhouse' on clouds whose nodes cannot reach a package index."""
    count, requirements = clusters.fill_wheelhouse(directory, python_version)
    err.print(f"{count} wheels in {directory} for {', '.join(requirements)}", markup=False)


def register(app: typer.Typer) -> None:
    """Add the ``cluster`` command group to the root app."""
    app.add_typer(cluster_app, name="cluster")
