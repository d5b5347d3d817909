"""Inference endpoint use cases behind ``dataops deploy | undeploy | rollback | endpoints``: which endpoint file
applies, which store and cloud to use, and the rows the CLI shows. The rollout itself is ``orchestrator.deploy``'s."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

from orchestrator.artifacts.open import open_store
from orchestrator.atomic import write_atomically
from orchestrator.clusters.provision import Progress
from orchestrator.deploy import rollout
from orchestrator.deploy.pull import NodesDoNotFollow, PullRollout
from orchestrator.deploy.spec import EndpointSpec, load_endpoint_spec
from orchestrator.deploy.state import endpoint_state, known_endpoints
from orchestrator.errors import DataopsError, SpecError
from orchestrator.serving.desired import endpoint_prefix
from orchestrator.openstack.stacks import Leftover
from orchestrator.scheduling.state import parse_instant
from orchestrator.usecases import clusters


log = logging.getLogger(__name__)


class EndpointFileNeeded(SpecError):
    """A first deploy to an endpoint was asked for without its endpoint file."""


def endpoint_spec(endpoint: str, file: Path | None) -> EndpointSpec:
    """The endpoint's spec: from ``file`` when given (its name set to ``endpoint``), else the one last deployed.

    Raises:
        EndpointFileNeeded: No file was given and the endpoint does not exist yet.
        SpecError: The file is malformed (file, line and field named).
    """
    state = endpoint_state(endpoint)
    if file is not None:
        return load_endpoint_spec(file, {"name": endpoint})
    if state.exists():
        return state.spec()
    raise EndpointFileNeeded(f"endpoint {endpoint} does not exist yet: give its file with -f")


def deploy_model(
    ref: str,
    endpoint: str,
    file: Path | None,
    store_location: str,
    progress: Progress,
    stack_timeout_s: float | None = None,
) -> dict:
    """Deploy a registered model to an endpoint, node by node; create the endpoint the first time.

    Args:
        ref: The model, ``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``.
        endpoint: The endpoint's name.
        file: The endpoint file; needed the first time only.
        store_location: The store holding the registry (a ``swift://`` store: nodes fetch models by signed URL).
        progress: Callbacks for Heat events, Ansible tasks and steps.
        stack_timeout_s: Longest wait for the stack; None reads the ``stack_timeout`` setting.

    Returns:
        The deploy record (who, when, model, version, run, nodes, seconds).

    Raises:
        EndpointFileNeeded: A first deploy without the endpoint file.
        DeployFailed: A node refused the version; the version served before keeps serving.
        DataopsError: The model, the store or the stack could not be resolved or created.
    """
    spec = endpoint_spec(endpoint, file)
    adopt_shared_history(endpoint, spec.cloud)
    try:
        return rollout.deploy(ref, spec, open_store(store_location), clusters.open_cloud(spec.cloud), progress,
                              stack_timeout_s=stack_timeout_s)
    finally:  # a refused version is history too
        share_endpoint(endpoint, spec.cloud)


def undeploy_endpoint(endpoint: str, stack_timeout_s: float | None = None) -> list[Leftover]:
    """Delete an endpoint and everything tagged with it; undeploying an absent endpoint succeeds.

    Args:
        endpoint: The endpoint's name.
        stack_timeout_s: Longest wait for the stack deletion; None reads the ``stack_delete_timeout`` setting.

    Returns:
        The tagged resources the stack had left and that were swept.
    """
    state = endpoint_state(endpoint)
    cloud_name = state.spec().cloud if state.exists() else None
    store_location = state.load().get("store") if state.exists() else None
    swept = rollout.undeploy(endpoint, clusters.open_cloud(cloud_name), stack_timeout_s)
    if store_location:  # once the nodes are gone: what they followed and reported goes too
        store = open_store(store_location)
        for key in list(store.list(f"{endpoint_prefix(endpoint)}/")):
            store.delete(key)
    share_endpoint(endpoint, cloud_name)
    return swept


def rollback_endpoint(
    endpoint: str, store_location: str, progress: Progress, stack_timeout_s: float | None = None
) -> dict:
    """Serve again the model version the endpoint served before its current one.

    Args:
        endpoint: The endpoint's name.
        store_location: The store holding the registry.
        progress: Callbacks for Heat events, Ansible tasks and steps.
        stack_timeout_s: Longest wait for the stack; None reads the ``stack_timeout`` setting.

    Returns:
        The deploy record of the version served again.

    Raises:
        EndpointNotFound: No such endpoint.
        DataopsError: The endpoint has no earlier version, or the rollout failed.
    """
    spec = endpoint_state(endpoint).spec()
    adopt_shared_history(endpoint, spec.cloud)
    try:
        return rollout.rollback(endpoint, open_store(store_location), clusters.open_cloud(spec.cloud),
                                progress=progress, stack_timeout_s=stack_timeout_s)
    finally:
        share_endpoint(endpoint, spec.cloud)


def share_endpoint(endpoint: str, cloud_name: str | None) -> None:
    """Copy what every machine of the cloud may know of the endpoint (its nodes, URLs, store, deploy history and
    CA certificate, which is public; never its SSH key, token or any TLS key) to the shared records, or remove it
    there once the endpoint is gone."""
    records = clusters.open_records(cloud_name, "endpoints")
    if records is None:
        return
    state = endpoint_state(endpoint)
    if not state.exists():
        records.delete(endpoint)
        return
    record = state.load()
    outputs = record.get("outputs") or {}
    history = merged_history(record.get("history", []), (records.get(endpoint) or {}).get("history", []))
    ca_file = state.served_ca()
    ca_certificate = ca_file.read_text() if ca_file else None
    records.put(endpoint, {"name": endpoint, "cloud": cloud_name, "store": record.get("store"),
                           "nodes": outputs.get("nodes") or [], "urls": outputs.get("endpoint_urls") or [],
                           "history": history, "ca_certificate": ca_certificate})


def cloud_of(endpoint: str) -> str | None:
    """The clouds.yaml entry this machine deployed the endpoint to (None: ``OS_CLOUD``).

    Raises:
        EndpointNotFound: this machine holds no record of the endpoint.
    """
    return (endpoint_state(endpoint).load().get("spec") or {}).get("cloud")


def merged_history(*histories: list[dict]) -> list[dict]:
    """Deploy entries of several records of one endpoint (this machine's, the shared one a watch's rollouts through
    the store add to), each once, oldest first."""
    seen: dict[tuple, dict] = {}
    for entry in (e for history in histories for e in history):
        seen.setdefault((entry.get("deployed_at"), entry.get("model"), entry.get("version"), entry.get("status")),
                        entry)
    return sorted(seen.values(), key=lambda entry: str(entry.get("deployed_at")))


def adopt_shared_history(endpoint: str, cloud_name: str | None = None) -> None:
    """Add to this machine's record of the endpoint the deploys made from elsewhere (a watch rolling a version out
    through the store), so that what it serves, rolls back to and shows is the cloud's truth."""
    state = endpoint_state(endpoint)
    if not state.exists():
        return
    try:
        records = clusters.open_records(cloud_name, "endpoints")
        shared = (records.get(endpoint) or {}) if records is not None else {}
    except DataopsError as exc:  # what this machine knows is still worth answering with
        log.warning("endpoint %s: its shared record cannot be read, so deploys made elsewhere are not shown: %s",
                    endpoint, exc)
        return
    local = state.history()
    merged = merged_history(local, shared.get("history", []))
    if merged != local:
        state.save(history=merged)


def nodes_follow_the_store(endpoint: str, cloud_name: str | None = None) -> bool:
    """Whether the endpoint's nodes follow its store's desired state, so that a machine without its SSH key (a
    schedule runner) can roll a version out (endpoints deployed by an earlier version have no followers)."""
    from orchestrator.deploy.pull import read_desired

    record = shared_endpoint(endpoint, cloud_name) or {}
    return bool(record.get("store")) and read_desired(open_store(record["store"]), endpoint) is not None


def pull_deploy_model(endpoint: str, model: str, version: int, progress: Progress,
                      cloud_name: str | None = None, **rollout_settings) -> dict:
    """Roll ``model:version`` out to an endpoint deployed from another machine, through its store: each node's
    follower serves what the store names for it (no SSH key, token or path to the endpoint's network is needed
    here, only the store). The deploy is added to the endpoint's shared record, failed or not.

    Raises:
        EndpointNotFound: the cloud's shared records know no such endpoint.
        NodesDoNotFollow: the endpoint was deployed before its nodes had followers.
        DeployFailed: a node refused the version or did not answer; the nodes are back on the version before.
    """
    records = clusters.open_records(cloud_name, "endpoints")
    record = records.get(endpoint) if records is not None else None
    if record is None:
        endpoint_state(endpoint).load()  # raises EndpointNotFound, naming the endpoints of this machine
    done = [e for e in record.get("history", []) if e.get("status") == "succeeded"]
    if not done or not record.get("store"):
        raise DataopsError(f"endpoint {endpoint} serves nothing yet: deploy a first version with `dataops deploy`")

    signed = [e["follow"]["url_expires"] for e in record.get("history", []) if e.get("follow")]
    if signed and parse_instant(signed[-1]) <= datetime.now(UTC):
        raise NodesDoNotFollow(f"the URLs endpoint {endpoint}'s nodes follow the store with lapsed on {signed[-1]}: "
                               "deploy it once more from the operator's machine (`dataops deploy`) to sign new ones")

    def keep(entry: dict) -> None:
        latest = records.get(endpoint) or record
        records.put(endpoint, {**latest, "history": merged_history(latest.get("history", []), [entry])})

    nodes = [str(node["name"]) for node in record.get("nodes") or []]
    pull = PullRollout(open_store(record["store"]), endpoint, nodes, progress, **rollout_settings)
    return pull.deploy(model, version, (done[-1]["model"], int(done[-1]["version"])), keep)


def shared_endpoint(endpoint: str, cloud_name: str | None = None) -> dict | None:
    """The endpoint's shared record (for a machine that did not deploy it, such as a schedule runner), or None."""
    records = clusters.open_records(cloud_name, "endpoints")
    return records.get(endpoint) if records is not None else None


class EndpointWithoutTls(DataopsError):
    """The endpoint serves plain HTTP (its file says ``insecure_http: true``): it has no CA to hand out."""


def endpoint_ca(endpoint: str, output: Path | None = None, cloud_name: str | None = None) -> tuple[str, Path | None]:
    """The CA certificate clients verify the endpoint's servers against: this machine's copy, else the one in the
    cloud's shared record (for a machine that did not deploy the endpoint); written to ``output`` when given.

    Args:
        endpoint: The endpoint's name.
        output: A file to write the certificate to (for clients: ``curl --cacert``, ``ssl_options``).
        cloud_name: The cloud whose shared records are read when this machine holds no state of the endpoint.

    Returns:
        The certificate (PEM) and its path on this machine (``output`` when given; else this machine's copy, or
        None when it came from the shared record).

    Raises:
        EndpointNotFound: No such endpoint here nor in the shared records.
        EndpointWithoutTls: The endpoint serves plain HTTP.
    """
    state = endpoint_state(endpoint)
    if state.exists():
        path = state.served_ca()
        if path is None:
            raise EndpointWithoutTls(f"endpoint {endpoint} serves plain HTTP (insecure_http in its file): it has "
                                     "no CA certificate")
        pem = path.read_text()
    else:
        record = shared_endpoint(endpoint, cloud_name)
        if record is None:
            state.load()  # raises EndpointNotFound, naming the endpoints of this machine
        if not record.get("ca_certificate"):
            raise EndpointWithoutTls(f"endpoint {endpoint} has no CA certificate in its shared record (it serves "
                                     "plain HTTP, or was deployed by a version without TLS)")
        pem, path = record["ca_certificate"], None
    if output is not None:
        write_atomically(output, pem, 0o644)
        path = output
    return pem, path


def list_endpoints() -> list[dict]:
    """The endpoints known on this machine: name, the model version served, node count and URLs."""
    rows = []
    for state in known_endpoints():
        record, serving = state.load(), state.serving()
        outputs = record.get("outputs", {})
        rows.append({"name": state.name, "serving": f"{serving['model']}:{serving['version']}" if serving else None,
                     "nodes": len(outputs.get("nodes") or []), "urls": outputs.get("endpoint_urls") or []})
    return rows


def describe_endpoint(endpoint: str) -> dict:
    """An endpoint's live state: each node's health, versions and request rate, the deploy history, and under
    ``drift`` the latest drift verdict of the version it serves (None: never checked)."""
    adopt_shared_history(endpoint, cloud_of(endpoint))
    status = rollout.endpoint_status(endpoint)
    status["drift"] = _served_version_drift(endpoint, status.get("serving"))
    return status


def _served_version_drift(endpoint: str, serving: dict | None) -> dict | None:
    """The latest drift check of the served version, from the store the endpoint was deployed from."""
    from orchestrator.usecases.drift_verdict import latest_drift_verdict

    store_location = endpoint_state(endpoint).load().get("store")
    if not serving or not store_location:
        return None
    try:
        verdict = latest_drift_verdict(open_store(store_location), serving["model"], int(serving["version"]))
    except DataopsError as exc:
        # The endpoint's state is still worth showing when its store cannot be read right now: say why instead.
        return {"verdict": "unknown", "error": str(exc)}
    return verdict.as_dict() if verdict else None
