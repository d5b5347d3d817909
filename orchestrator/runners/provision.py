"""A schedule runner's life: create (stack -> credential -> playbook -> ticking), rotate its credential, delete it.

The runner VM holds no state of its own (schedules, history and leases are in the store), so replacing one is
deleting it and creating another. What it holds is a Keystone application credential issued for it alone:
restricted, expiring, with the fewest roles, and limited by access rules to its containers where the cloud enforces
them. Its secret, made when it is issued, goes to a private file for the playbook, then to the VM (mode 0600, never
logged), and nowhere else: not in the stack's parameters or outputs, not in the local record, not in any message.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import yaml

from orchestrator.ansible.inventory import SshAccess, build_inventory
from orchestrator.ansible.playbook import PlaybookResult, TaskEvent, run_playbook
from orchestrator.atomic import write_atomically
from orchestrator.errors import ConfigurationFailed, DataopsError
from orchestrator.runners import credential as credentials_policy
from orchestrator.runners.cloud import (
    CredentialIssuer,
    CredentialSummary,
    IssuedCredential,
    Leftover,
    RunnerCloud,
    StackEvent,
)
from orchestrator.runners.spec import ClusterSeat, RunnerSpec
from orchestrator.runners.state import RunnerState, now, runner_state

TEMPLATES = Path(__file__).resolve().parents[2] / "heat_templates"
RUNNER_TEMPLATE = TEMPLATES / "runner.yaml"
PLAYBOOK = "runner.yml"
# The Ansible group of runner hosts in playbooks/runner.yml.
GROUP = "runner"
TAG_PREFIX = "dataops-runner="
# The cloud's name in the runner VM's clouds.yaml (OS_CLOUD there).
VM_CLOUD = "dataops-runner"

Configure = Callable[..., PlaybookResult]


class Progress(Protocol):
    """Callbacks a caller (the CLI) gives to see what happens (``orchestrator.clusters.provision.Progress``)."""

    on_stack_event: Callable[[StackEvent], None]
    on_task: Callable[[TaskEvent], None]
    on_step: Callable[[str], None]


@dataclass(frozen=True)
class RunnerPackage:
    """What the VM installs: the project's wheel, the wheelhouse archive of its dependencies, and their pins."""

    wheel: Path
    wheelhouse_archive: Path
    requirements: list[str]


@dataclass
class RunnerReady:
    """A runner that ticks, and how long each phase took."""

    name: str
    runner_id: str
    address: str
    public_address: str | None
    credential: CredentialSummary
    timings: dict[str, float] = field(default_factory=dict)


def stack_name(runner: str) -> str:
    """Name of the runner's Heat stack (its server has the same name)."""
    return f"runner-{runner}"


def keypair_name(runner: str) -> str:
    """Name of the Nova key pair created for the runner."""
    return f"dataops-runner-{runner}"


def runner_id(runner: str, outputs: dict) -> str:
    """The identity the VM ticks under (in leases and attempts): the runner and its server, so a replacement of
    the same name is told apart from the VM it replaced."""
    return f"{runner}-{str(outputs.get('server_id') or 'server')[:8]}"


def _address(spec: RunnerSpec, outputs: dict) -> str:
    public = outputs.get("public_address")
    if spec.floating_ip and not public:
        raise DataopsError(f"runner {spec.name}: floating_ip is on but the stack gave the server no floating IP")
    address = public or outputs.get("address")
    if not address:
        raise DataopsError(f"stack {stack_name(spec.name)} has no address in its outputs")
    return str(address)


def _inventory(state: RunnerState, spec: RunnerSpec, outputs: dict) -> dict:
    inventory = build_inventory([], SshAccess(private_key=state.ssh_key, user=spec.ssh_user))
    inventory["all"]["children"][GROUP] = {"hosts": {stack_name(spec.name): {"ansible_host": _address(spec, outputs)}}}
    return inventory


def _configure(configure: Configure, state: RunnerState, spec: RunnerSpec, outputs: dict, issued: IssuedCredential,
               credentials: CredentialIssuer, progress: Progress, phase: str, records_container: str | None,
               package: RunnerPackage | None = None, seat: ClusterSeat | None = None) -> float:
    """Run the runner playbook (``phase`` install: everything; credential: the credential only) with the credential
    in a private file that is removed right after; return the seconds it took. With ``seat``, the install also puts
    the cluster's record and the runner's client certificate where the VM's tick looks for clusters."""
    clouds = {"clouds": {VM_CLOUD: credentials.client_config(issued)}}
    started = time.monotonic()
    # A folder only this user reads (mkdtemp: 0700), a file only this user reads (0600), gone when the play ends.
    with tempfile.TemporaryDirectory(prefix="dataops-runner-credential-") as private:
        clouds_file = Path(private) / "clouds.yaml"
        write_atomically(clouds_file, yaml.safe_dump(clouds, sort_keys=False), 0o600)
        extravars = {
            "schedule_runner_phase": phase,
            "schedule_runner_store": spec.store,
            "schedule_runner_id": runner_id(spec.name, outputs),
            "schedule_runner_every": spec.every,
            "schedule_runner_cloud": VM_CLOUD,
            "schedule_runner_clouds_yaml": str(clouds_file),
            "schedule_runner_records_container": records_container or "none",
        }
        if seat is not None:
            record_file = Path(private) / "cluster.json"
            write_atomically(record_file, json.dumps(seat.record, indent=1), 0o600)
            extravars.update({
                "schedule_runner_cluster": seat.cluster,
                "schedule_runner_cluster_record": str(record_file),
                "schedule_runner_cluster_tls": {"ca": str(seat.ca), "cert": str(seat.cert), "key": str(seat.key)},
            })
        if package is None:
            extravars["common_prepared"] = True  # the environment is installed: the common role ends at once
        else:
            extravars.update({
                "common_python_packages": package.requirements,
                "common_wheelhouse_archive": str(package.wheelhouse_archive),
                "schedule_runner_project_wheel": str(package.wheel),
            })
        configure(PLAYBOOK, _inventory(state, spec, outputs), extravars, on_event=progress.on_task)
    return time.monotonic() - started


def _issue(spec: RunnerSpec, credentials: CredentialIssuer, at: datetime,
           records_container: str | None) -> IssuedCredential:
    """Issue the runner a credential and check that it reaches the store before anything uses it."""
    shared = (records_container,) if records_container else ()
    issued = credentials.issue(
        credentials_policy.credential_name(spec.name, at),
        description=f"dataops schedule runner {spec.name}: ticks the schedules of {spec.store}",
        roles=spec.credential_roles, expires_at=credentials_policy.expires_at(spec, at),
        access_rules=credentials_policy.access_rules(spec, shared),
    )
    try:
        credentials.check_object_store(issued, spec.store_container)
    except DataopsError:
        credentials.revoke(issued.id)
        raise
    return issued


def _credential_record(issued: IssuedCredential) -> dict:
    return {"id": issued.id, "name": issued.name, "expires_at": issued.expires_at, "roles": list(issued.roles),
            "access_rules": issued.access_rules, "issued_at": now()}


def create_runner(
    spec: RunnerSpec,
    cloud: RunnerCloud,
    credentials: CredentialIssuer,
    package: RunnerPackage,
    public_key: str,
    progress: Progress,
    configure: Configure | None = None,
    stack_timeout_s: float = 1800,
    records_container: str | None = None,
    seat: ClusterSeat | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunnerReady:
    """Create the runner's stack, issue its credential, install the project on it and start its tick.

    A stack that fails, or a credential the store refuses, leaves nothing behind. A configuration that fails leaves
    the runner (status ``failed``) for inspection; ``delete_runner`` removes it.

    Args:
        spec: The runner.
        cloud: Where its stack, key pair and port go.
        credentials: Issues its application credential.
        package: What it installs.
        public_key: The OpenSSH public key of the runner's key pair (its private key is ``RunnerState.ssh_key``).
        progress: Callbacks for Heat events, Ansible tasks and steps.
        configure: Runs the runner playbook; None is ansible-runner.
        stack_timeout_s: Longest wait for the stack.
        records_container: The cloud's container of shared cluster and endpoint records, which the runs read and
            touch (the ``records_container`` setting); None: the runner uses none.
        seat: The cluster the runner joins (``spec.cluster``): its network, the rule admitting the runner to its
            scheduler (in the runner's stack, so it goes with it), the record and certificate the VM keeps.
        clock: The time (the credential's name and expiry).

    Returns:
        The ticking runner, its identity, address and credential (never the secret), with timings.

    Raises:
        DataopsError: The runner exists already, the stack failed, Keystone or Swift refused the credential, or the
            configuration failed (host, task and reason named).
    """
    configure = configure or run_playbook
    if (seat.cluster if seat else None) != spec.cluster:
        raise DataopsError(f"runner {spec.name}: the file names cluster {spec.cluster!r}, the seat given is on "
                           f"{seat.cluster if seat else None!r}")
    started = time.monotonic()
    state = runner_state(spec.name)
    if state.exists() or cloud.find_stack(stack_name(spec.name)) is not None:
        raise DataopsError(f"runner {spec.name!r} already exists; delete it first or choose another name")
    state.save(spec=spec, status="creating", records_container=records_container)
    try:
        progress.on_step(f"Creating key pair and stack {stack_name(spec.name)}")
        # A key pair of that name left by an earlier runner would give the server a key this machine lacks.
        cloud.delete_leftover(Leftover("keypair", keypair_name(spec.name), spec.name))
        cloud.create_keypair(keypair_name(spec.name), public_key, spec.name)
        cloud.create_stack(stack_name(spec.name), RUNNER_TEMPLATE, [],
                           spec.heat_parameters(keypair_name(spec.name), seat),
                           tags=["dataops", f"{TAG_PREFIX}{spec.name}"])
        cloud.wait_stack(stack_name(spec.name), "CREATE", progress.on_stack_event, stack_timeout_s)
        heat_seconds = time.monotonic() - started
        outputs = cloud.stack_outputs(stack_name(spec.name))
        progress.on_step(f"Issuing the runner's application credential (expires in {spec.credential_ttl})")
        issued = _issue(spec, credentials, clock(), records_container)
    except DataopsError:
        progress.on_step("Creation failed: deleting the runner's stack, key pair and credentials")
        delete_runner(spec.name, cloud, credentials, stack_timeout_s)
        raise
    state.save(status="configuring", outputs=outputs, runner_id=runner_id(spec.name, outputs),
               credential=_credential_record(issued))
    progress.on_step(f"Installing the project on {stack_name(spec.name)} and starting its tick")
    try:
        configure_seconds = _configure(configure, state, spec, outputs, issued, credentials, progress, "install",
                                       records_container, package, seat)
    except ConfigurationFailed as exc:
        state.save(status="failed", error=str(exc))
        raise ConfigurationFailed(f"{exc}\nrunner {spec.name} is left as it is for inspection: "
                                  f"`dataops schedule runner delete {spec.name}` removes it") from exc
    state.save(status="ready", configured_at=now())
    total = time.monotonic() - started
    return RunnerReady(
        name=spec.name, runner_id=runner_id(spec.name, outputs), address=str(outputs.get("address")),
        public_address=outputs.get("public_address"), credential=issued.summary(),
        timings={"heat": heat_seconds, "configure": configure_seconds, "total": total},
    )


def rotate_credential(
    name: str,
    credentials: CredentialIssuer,
    progress: Progress,
    configure: Configure | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[CredentialSummary, list[CredentialSummary]]:
    """Give a runner a new credential (a fresh expiry), then revoke the ones it had.

    The new credential is checked against the store and in place on the VM (which checks it reaches the store
    from there) before any old one is revoked: a rotation that fails leaves the runner on its old credential.

    Args:
        name: The runner.
        credentials: Issues and revokes application credentials.
        progress: Callbacks for Ansible tasks and steps.
        configure: Runs the runner playbook; None is ansible-runner.
        clock: The time (the new credential's name and expiry).

    Returns:
        The new credential, and the ones revoked.

    Raises:
        RunnerNotFound: No such runner on this machine.
        DataopsError: Keystone or Swift refused the new credential, or the VM could not take it.
    """
    configure = configure or run_playbook
    state = runner_state(name)
    record, spec = state.load(), state.spec()
    progress.on_step(f"Issuing runner {name} a new application credential (expires in {spec.credential_ttl})")
    records_container = record.get("records_container")
    issued = _issue(spec, credentials, clock(), records_container)
    progress.on_step(f"Putting the new credential on {stack_name(name)}")
    try:
        _configure(configure, state, spec, record.get("outputs") or {}, issued, credentials, progress, "credential",
                   records_container)
    except DataopsError:
        credentials.revoke(issued.id)
        raise
    old = [c for c in credentials.credentials(lambda n: credentials_policy.is_credential_of(n, name))
           if c.id != issued.id]
    for credential in old:
        credentials.revoke(credential.id)
    state.save(credential=_credential_record(issued), rotated_at=now())
    return issued.summary(), old


def delete_runner(name: str, cloud: RunnerCloud, credentials: CredentialIssuer,
                  stack_timeout_s: float = 900) -> list[Leftover]:
    """Delete the runner's stack (server, port, security group, network), its key pair, any port still tagged with
    it and every credential issued to it, then its local state. Idempotent: works without the local state too.

    Args:
        name: The runner.
        cloud: Where it runs.
        credentials: Revokes its application credentials.
        stack_timeout_s: Longest wait for the stack deletion.

    Returns:
        What was deleted beside the stack and the key pair: leftover ports and floating IPs, application credentials.

    Raises:
        StackFailed: Heat could not delete the stack (the resource and the cloud's reason named).
        StackTimedOut: The stack was still being deleted after ``stack_timeout_s``.
    """
    cloud.delete_stack(stack_name(name), stack_timeout_s)
    cloud.delete_leftover(Leftover("keypair", keypair_name(name), name))
    swept = cloud.list_tagged(TAG_PREFIX, name)
    for leftover in swept:
        cloud.delete_leftover(leftover)
    for credential in credentials.credentials(lambda n: credentials_policy.is_credential_of(n, name)):
        credentials.revoke(credential.id)
        swept.append(Leftover("application_credential", credential.id, name, {"name": credential.name}))
    runner_state(name).remove()
    return swept
