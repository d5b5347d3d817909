"""Schedule runner use cases behind ``dataops schedule runner``: create one from a runner file (with the wheels it
installs, built here and cached), list, show, rotate its credential, delete. The runner's life itself is
``orchestrator.runners.provision``'s."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.clusters import tls
from orchestrator.clusters.provision import SCHEDULER_PORT
from orchestrator.clusters.state import cluster_state, ensure_ssh_key
from orchestrator.clusters.wheelhouse import build_wheelhouse, pack_wheelhouse
from orchestrator.config import duration_setting, setting
from orchestrator.errors import DataopsError
from orchestrator.openstack.stacks import Leftover
from orchestrator.runners import provision
from orchestrator.runners.cloud import CredentialIssuer, CredentialSummary, RunnerCloud
from orchestrator.runners.package import build_project_wheel, requirements_digest, runner_requirements
from orchestrator.runners.spec import ClusterSeat, load_runner_spec
from orchestrator.runners.state import RunnerState, known_runners, runner_state

# Marks a wheelhouse whose download finished: a later create reuses it without asking pip.
COMPLETE = ".complete"


def cache_dir() -> Path:
    """Where the runner's wheels are built and kept between runs: ``DATAOPS_RUNNER_CACHE`` or
    ``~/.cache/dataops/runner``."""
    return Path(os.environ.get("DATAOPS_RUNNER_CACHE", Path.home() / ".cache" / "dataops" / "runner"))


def open_runner_cloud(cloud_name: str | None) -> tuple[RunnerCloud, CredentialIssuer]:
    """Connect to the cloud named in clouds.yaml (or ``OS_CLOUD``): its stacks and its application credentials.

    Raises:
        CloudError: The cloud is unknown, unreachable or refuses the credentials.
    """
    from orchestrator.openstack import connect
    from orchestrator.openstack.app_credentials import KeystoneApplicationCredentials
    from orchestrator.openstack.cluster_cloud import OpenStackClusterCloud

    conn = connect(cloud_name)
    return OpenStackClusterCloud(conn), KeystoneApplicationCredentials(conn)


def runner_package(python_version: str, cache: Path | None = None) -> provision.RunnerPackage:
    """The project's wheel and a wheelhouse of its dependencies pinned to this machine's versions, built once per
    set of pins (and per checkout, for the wheel) and reused.

    Args:
        python_version: The Python version of the runner's image.
        cache: Where wheels are kept; default :func:`cache_dir`.

    Raises:
        DataopsError: pip could not download a wheel or build the project's.
    """
    cache = cache or cache_dir()
    requirements = runner_requirements()
    wheelhouse = cache / "wheelhouse" / requirements_digest(requirements, python_version)
    if not (wheelhouse / COMPLETE).exists():
        build_wheelhouse(requirements, wheelhouse, python_version)
        (wheelhouse / COMPLETE).touch()
    return provision.RunnerPackage(
        wheel=build_project_wheel(cache / "project"),
        wheelhouse_archive=pack_wheelhouse(wheelhouse, cache / "archives"),
        requirements=requirements,
    )


def create_runner(
    file: Path,
    progress: provision.Progress,
    *,
    cloud_name: str | None = None,
    stack_timeout_s: float | None = None,
    cache: Path | None = None,
) -> provision.RunnerReady:
    """Create a runner VM from a runner file and start its tick.

    Args:
        file: The runner file (runner.yaml).
        progress: Callbacks for Heat events, Ansible tasks and steps.
        cloud_name: The clouds.yaml entry; None uses the file's, then ``OS_CLOUD``.
        stack_timeout_s: Longest wait for the stack; None reads the ``stack_timeout`` setting.
        cache: Where the wheels are kept; default :func:`cache_dir`.

    Returns:
        The ticking runner with its identity, address, credential (never the secret) and timings.

    Raises:
        SpecError: The runner file is malformed (file, line and field named).
        DataopsError: The runner exists, its stack failed, the credential was refused, or configuration failed.
    """
    spec = load_runner_spec(file)
    cloud, credentials = open_runner_cloud(cloud_name or spec.cloud)
    progress.on_step("Building the wheels the runner installs (cached)")
    package = runner_package(spec.python_version, cache)
    state = runner_state(spec.name)
    public_key = ensure_ssh_key(state.ssh_key, provision.keypair_name(spec.name))
    records = setting("records_container")
    seat = cluster_seat(spec.name, spec.cluster) if spec.cluster else None
    return provision.create_runner(spec, cloud, credentials, package, public_key, progress,
                                   stack_timeout_s=stack_timeout_s or duration_setting("stack_timeout"),
                                   records_container=None if records.lower() == "none" else records, seat=seat)


def cluster_seat(runner: str, cluster: str) -> ClusterSeat:
    """What runner ``runner`` needs to run slots on ``cluster``, a cluster made from this machine: its network,
    its security group, and a client certificate of its CA issued to the runner (the CA's key stays here).

    Raises:
        ClusterNotFound: No such cluster on this machine.
        DataopsError: The cluster is not ready, or its stack predates runners joining clusters.
    """
    state = cluster_state(cluster)
    record = state.load_record()
    outputs = record.get("outputs") or {}
    if record.get("status") != "ready":
        raise DataopsError(f"runner {runner}: cluster {cluster!r} is {record.get('status')!r}, not ready: see "
                           f"`dataops cluster show {cluster}`")
    missing = [key for key in ("scheduler_url", "network_id", "security_group_id") if not outputs.get(key)]
    if missing:
        raise DataopsError(f"runner {runner}: the stack of cluster {cluster!r} gives no {', '.join(missing)} "
                           f"(made before runners could join clusters): scale it to its current size to update "
                           f"its stack, or create it again")
    files = tls.issue_certificate(state.tls_dir, f"runner-{runner}")
    # What the VM keeps of the cluster: where its scheduler is and its file; no SSH key, no CA key.
    kept = {"status": "ready", "spec": record["spec"], "created_at": record.get("created_at"),
            "outputs": {key: outputs[key] for key in ("scheduler_url", "network_id")},
            "on_cluster_network": True}
    return ClusterSeat(cluster=cluster, network_id=str(outputs["network_id"]),
                       security_group_id=str(outputs["security_group_id"]), scheduler_port=SCHEDULER_PORT,
                       record=kept, ca=files.ca, cert=files.cert, key=files.key)


def _row(state: RunnerState) -> dict:
    record = state.load()
    credential = record.get("credential") or {}
    return {
        "name": state.name,
        "status": record.get("status", "?"),
        "store": record["spec"]["store"],
        "runner_id": record.get("runner_id"),
        "address": (record.get("outputs") or {}).get("address"),
        "credential_expires_at": credential.get("expires_at"),
        "created_at": record.get("created_at"),
    }


def list_runners() -> list[dict]:
    """The runners created from this machine, one row each: name, status, store, identity, address, expiry of
    the credential, creation time."""
    return [_row(state) for state in known_runners()]


def describe_runner(name: str, now: datetime | None = None) -> dict:
    """A runner's record (its spec, the stack's outputs, its credential's id, name and expiry; no secret) and the
    days its credential has left.

    Raises:
        RunnerNotFound: No such runner on this machine.
    """
    record = runner_state(name).load()
    credential = record.get("credential") or {}
    days_left = None
    if credential.get("expires_at"):
        expires = datetime.fromisoformat(str(credential["expires_at"]).removesuffix("Z")).replace(tzinfo=UTC)
        days_left = round(((expires - (now or datetime.now(UTC))).total_seconds()) / 86400, 1)
    return {"name": name, **record, "credential_days_left": days_left}


def rotate_credential(name: str, progress: provision.Progress) -> tuple[CredentialSummary, list[CredentialSummary]]:
    """Give a runner a new credential (a fresh expiry) and revoke its old ones, once the VM uses the new one.

    Raises:
        RunnerNotFound: No such runner on this machine.
        DataopsError: The new credential was refused or could not be put in place (the old one stays).
    """
    spec = runner_state(name).spec()
    _, credentials = open_runner_cloud(spec.cloud)
    return provision.rotate_credential(name, credentials, progress)


def delete_runner(name: str, cloud_name: str | None = None, stack_timeout_s: float | None = None) -> list[Leftover]:
    """Delete a runner: its stack, key pair, tagged ports, every credential issued to it, its local state. Deleting
    an absent runner succeeds.

    Args:
        name: The runner.
        cloud_name: The clouds.yaml entry; None uses the runner's, then ``OS_CLOUD``.
        stack_timeout_s: Longest wait for the stack deletion; None reads the ``stack_delete_timeout`` setting.

    Returns:
        What was deleted beside the stack.
    """
    state = runner_state(name)
    cloud_name = cloud_name or (state.spec().cloud if state.exists() else None)
    cloud, credentials = open_runner_cloud(cloud_name)
    timeout_s = stack_timeout_s or duration_setting("stack_delete_timeout")
    return provision.delete_runner(name, cloud, credentials, timeout_s)
