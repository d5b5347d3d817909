"""Inference endpoint use cases: deploy a registered model (stack, then node-by-node rollout), roll back, undeploy,
and read an endpoint's live state."""

from __future__ import annotations

import getpass
import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from orchestrator.ansible.inventory import Node, SshAccess, build_inventory
from orchestrator.ansible.playbook import run_playbook
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.clusters.cloud import ClusterCloud
from orchestrator.clusters.provision import Progress
from orchestrator.clusters.wheelhouse import pack_wheelhouse
from orchestrator.config import duration_setting
from orchestrator.deploy import tls as endpoint_tls
from orchestrator.deploy.server_package import server_wheelhouse
from orchestrator.deploy.pull import follower_urls, model_entry, write_desired
from orchestrator.deploy.spec import EndpointSpec
from orchestrator.deploy.state import EndpointState, endpoint_state, now
from orchestrator.errors import CloudError, ConfigurationFailed, DataopsError, DeployFailed
from orchestrator.monitoring.windows import STORE_CAPTURES
from orchestrator.openstack.stacks import Leftover
from orchestrator.registry.models import ModelRegistry
from orchestrator.serving.desired import PUSH

TEMPLATES = Path(__file__).resolve().parents[2] / "heat_templates"
INFERENCE_TEMPLATE = TEMPLATES / "inference.yaml"
ENDPOINT_TAG_PREFIX = "dataops-endpoint="


def stack_name(endpoint: str) -> str:
    return f"endpoint-{endpoint}"


def keypair_name(endpoint: str) -> str:
    return f"dataops-endpoint-{endpoint}"


def _ensure_stack(spec: EndpointSpec, state: EndpointState, cloud: ClusterCloud, progress: Progress,
                  timeout_s: float) -> dict:
    """Create the endpoint's stack the first time, update it when the node count changed; return its outputs."""
    stack = stack_name(spec.name)
    parameters = spec.heat_parameters(keypair_name(spec.name))
    existing = cloud.find_stack(stack)
    if existing is None:
        progress.on_step(f"Creating key pair and stack {stack}")
        try:
            cloud.create_keypair(keypair_name(spec.name), state.ensure_ssh_key(), spec.name)
            cloud.create_stack(stack, INFERENCE_TEMPLATE, [], parameters, tags=["dataops", f"{ENDPOINT_TAG_PREFIX}{spec.name}"])
            cloud.wait_stack(stack, "CREATE", progress.on_stack_event, timeout_s)
        except DataopsError:
            progress.on_step("Stack failed: deleting it and everything tagged with the endpoint")
            undeploy(spec.name, cloud, timeout_s)
            raise
    elif (state.exists() and state.spec() != spec) or _scheme_differs(cloud.stack_outputs(stack), spec):
        progress.on_step(f"Updating stack {stack}")
        cloud.update_stack(stack, INFERENCE_TEMPLATE, [], parameters)
        cloud.wait_stack(stack, "UPDATE", progress.on_stack_event, timeout_s)
    return cloud.stack_outputs(stack)


def _scheme_differs(outputs: dict, spec: EndpointSpec) -> bool:
    """Whether the stack's URLs name another scheme than the endpoint serves (a stack made before TLS was on)."""
    return any(not str(url).startswith(f"{spec.scheme}://") for url in outputs.get("endpoint_urls") or [])


def _issue_certificates(spec: EndpointSpec, state: EndpointState, outputs: dict) -> str:
    """The endpoint's CA and each node's certificate, covering its name, its addresses and the file's names;
    return the folder the playbook copies them from ("" when the endpoint serves plain HTTP)."""
    if spec.insecure_http:
        return ""
    endpoint_tls.ensure_endpoint_ca(state.tls_dir, spec.name)
    for node in outputs.get("nodes") or []:
        endpoint_tls.issue_server_certificate(state.tls_dir, str(node["name"]), spec.tls_names,
                                              [node.get("address"), node.get("public_address")])
    return str(state.tls_dir)


def deploy(
    ref: str,
    spec: EndpointSpec,
    store: ArtifactStore,
    cloud: ClusterCloud,
    progress: Progress | None = None,
    configure: Callable | None = None,
    wheelhouse_dir: Path | None = None,
    stack_timeout_s: float | None = None,
) -> dict:
    """Deploy model ``ref`` to endpoint ``spec.name``, one node at a time, and record the deploy.

    Each node fetches the new version (checked against the registry's sha256), loads it beside the one it serves,
    and switches only once the version reproduces its model card's examples. The first node that fails stops the
    rollout and is put back on the previous version; the other nodes were never touched. Nodes serve HTTPS with a
    certificate of the endpoint's own CA (made here, kept in the endpoint's state) unless the endpoint file asks for
    plain HTTP.

    Args:
        ref: The model, ``NAME``, ``NAME:VERSION`` or ``NAME@STAGE``.
        spec: The endpoint.
        store: The store holding the registry; it must sign URLs (Swift), for the nodes fetch the model by URL.
        cloud: The cloud the endpoint runs on.
        progress: Callbacks for Heat events, Ansible tasks and steps.
        configure: Runs the inference playbook on one node (ansible-runner by default).
        wheelhouse_dir: Where the server's wheels are built and cached.
        stack_timeout_s: Longest wait for the stack to be created or updated; None reads the ``stack_timeout``
            setting.

    Returns:
        The deploy record (who, when, model, version, run, nodes, seconds).

    Raises:
        DeployFailed: a node refused the version; the message names the node and the reason.
        DataopsError: the model or the stack could not be resolved or created.
    """
    progress = progress or Progress()
    configure = configure or run_playbook
    stack_timeout_s = stack_timeout_s or duration_setting("stack_timeout")
    started = time.monotonic()
    registry = ModelRegistry(store)
    name, version = registry.resolve(ref)
    card = registry.card(f"{name}:{version}")
    # Before anything is created: the store must be able to hand nodes the model.
    models = [model_entry(store, name, version)]
    state = endpoint_state(spec.name)
    token = state.ensure_token()
    state.ensure_ssh_key()
    previous = state.serving()
    outputs = _ensure_stack(spec, state, cloud, progress, stack_timeout_s)
    state.save(spec=spec.model_dump(mode="json"), outputs=outputs, store=store.uri)
    nodes = [Node(str(n["name"]), "inference", str(n["address"])) for n in outputs.get("nodes") or []]
    if not nodes:
        raise CloudError(f"stack {stack_name(spec.name)} has no nodes in its outputs")
    tls_source_dir = _issue_certificates(spec, state, outputs)
    wheelhouse, packages = server_wheelhouse(
        wheelhouse_dir or Path.home() / ".cache" / "dataops" / "server-wheelhouse", gpu=spec.gpu)
    inventory = build_inventory(nodes, SshAccess(private_key=state.ssh_key, user=spec.ssh_user))
    common = {"common_python_packages": packages, "common_wheelhouse_archive": str(pack_wheelhouse(wheelhouse)),
              "onnx_server_token": token, "onnx_server_port": spec.port, "onnx_server_max_batch_rows": spec.max_batch_rows,
              "onnx_server_device": "cuda" if spec.gpu else "cpu",
              "onnx_server_tls_source_dir": tls_source_dir, "onnx_server_insecure_http": spec.insecure_http,
              "onnx_server_range_policy": spec.range_policy, **_capture_vars(spec, store)}
    entry = {"model": name, "version": version, "run_id": card.get("lineage", {}).get("run_id"),
             "deployed_by": getpass.getuser(), "deployed_at": now(), "nodes": [n.name for n in nodes]}
    if spec.capture_rate > 0:
        entry["captures"] = {"rate": spec.capture_rate, "store": f"{store.uri}/{STORE_CAPTURES}",
                             "url_expires": capture_url_expiry(spec)}
    entry["follow"] = {"url_expires": capture_url_expiry(spec)}  # the followers' URLs lapse with the captures'
    # The nodes' followers stand aside for a push, and later follow the generations a watch writes.
    write_desired(store, spec.name, PUSH, dict.fromkeys((n.name for n in nodes), models[0]), getpass.getuser())
    follow_seconds = spec.capture_url_days * 86400
    for node in nodes:
        progress.on_step(f"Rolling {name}:{version} out to {node.name}")
        follow = {"onnx_server_follow": {"endpoint": spec.name, "node": node.name, "every_s": spec.follow_every_s,
                                         **follower_urls(store, spec.name, node.name, follow_seconds)}}
        try:
            configure("inference.yml", inventory, {**common, **follow, "onnx_server_models": models},
                      limit=node.name, on_event=progress.on_task)
        except ConfigurationFailed as exc:
            kept = f"{previous['model']}:{previous['version']} keeps serving" if previous else "nothing was serving"
            if previous:
                progress.on_step(f"{node.name} refused {name}:{version}: putting it back on {previous['version']}")
                try:
                    configure("inference.yml", inventory,
                              {**common, **follow, "onnx_server_models": [model_entry(store, previous["model"],
                                                                             previous["version"])]},
                              limit=node.name, on_event=progress.on_task)
                except ConfigurationFailed as put_back:  # a node that died answers neither
                    kept = (f"{previous['model']}:{previous['version']} keeps serving on the nodes not yet rolled; "
                            f"{node.name} could not be put back on it either: {put_back}")
            state.save(history=state.history() + [{**entry, "status": "failed", "failed_on": node.name}])
            raise DeployFailed(f"deploy of {name}:{version} to {spec.name} stopped on {node.name}: {exc}\n{kept}") from exc
    entry.update(status="succeeded", seconds=round(time.monotonic() - started, 1))
    state.save(history=state.history() + [entry])
    return entry


def capture_url_expiry(spec: EndpointSpec) -> str:
    """When the capture URL a deploy signs now lapses (ISO 8601, UTC): the nodes capture nothing after it."""
    lapse = datetime.now(timezone.utc) + timedelta(days=spec.capture_url_days)
    return lapse.replace(microsecond=0).isoformat()


def _capture_vars(spec: EndpointSpec, store: ArtifactStore) -> dict:
    """The nodes' capture settings: the rate, and a URL signed for writes under the store's ``captures/`` alone."""
    if spec.capture_rate <= 0:
        return {"onnx_server_capture_rate": 0.0, "onnx_server_capture_url": ""}
    url = store.url_signer().temp_url(STORE_CAPTURES, spec.capture_url_days * 86400, "PUT", prefix=True)
    return {"onnx_server_capture_rate": spec.capture_rate, "onnx_server_capture_url": url}


def rollback(endpoint: str, store: ArtifactStore, cloud: ClusterCloud, **kwargs) -> dict:
    """Deploy again the version the endpoint served before its current one.

    Raises:
        EndpointNotFound: no such endpoint.
        DataopsError: the endpoint has no earlier version.
    """
    state = endpoint_state(endpoint)
    done = [e for e in state.load().get("history", []) if e["status"] == "succeeded"]
    current = done[-1] if done else None
    earlier = [e for e in done if current and (e["model"], e["version"]) != (current["model"], current["version"])]
    if not earlier:
        raise DataopsError(f"endpoint {endpoint} has no earlier version to roll back to")
    target = earlier[-1]
    return deploy(f"{target['model']}:{target['version']}", state.spec(), store, cloud, **kwargs)


def undeploy(endpoint: str, cloud: ClusterCloud, stack_timeout_s: float | None = None) -> list[Leftover]:
    """Delete the endpoint's stack, key pair and anything still tagged with it, then its local state. Idempotent.

    Args:
        endpoint: The endpoint.
        cloud: The cloud it runs on.
        stack_timeout_s: Longest wait for the stack deletion; None reads the ``stack_delete_timeout`` setting.

    Returns:
        The tagged resources the stack had left and that were swept.
    """
    cloud.delete_stack(stack_name(endpoint), stack_timeout_s or duration_setting("stack_delete_timeout"))
    swept = [Leftover("keypair", keypair_name(endpoint), endpoint)]
    swept += cloud.list_tagged(ENDPOINT_TAG_PREFIX, endpoint)
    for leftover in swept:
        cloud.delete_leftover(leftover)
    endpoint_state(endpoint).remove()
    return swept[1:]


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """The TLS context the project's own clients reach an endpoint's servers with: verified against the endpoint's
    CA (names and addresses included), or against the system's CAs when the endpoint has none here."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file and Path(ca_file).exists() else None)


def _requests_answered(url: str, headers: dict, model: str, context: ssl.SSLContext) -> float:
    request = urllib.request.Request(f"{url}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=5, context=context) as response:
        return sum(float(line.rsplit(" ", 1)[1]) for line in response.read().decode().splitlines()
                   if line.startswith("dataops_serving_requests_total{") and f'model="{model}"' in line)


def node_status(url: str, token: str, model: str, sample_seconds: float = 1.0, ca_file: Path | None = None) -> dict:
    """A node's live state: ready, the versions of ``model`` it serves, requests answered and their rate per second
    (two readings of its metrics, ``sample_seconds`` apart). An ``https://`` node is verified against ``ca_file``
    (the endpoint's CA); one whose certificate does not verify is reported with the reason, never trusted."""
    headers = {"Authorization": f"Bearer {token}"}
    status = {"url": url, "ready": False, "versions": [], "requests": None, "requests_per_s": None}
    context = client_context(ca_file)
    try:
        with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=5, context=context) as response:
            status["ready"] = response.status == 200
        request = urllib.request.Request(f"{url}/v2/models/{model}", headers=headers)
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            status["versions"] = json.loads(response.read()).get("versions", [])
        first, started = _requests_answered(url, headers, model, context), time.monotonic()
        time.sleep(sample_seconds)
        status["requests"] = _requests_answered(url, headers, model, context)
        status["requests_per_s"] = round((status["requests"] - first) / (time.monotonic() - started), 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        status["error"] = str(exc)
    return status


def endpoint_status(endpoint: str) -> dict:
    """The endpoint's record with each node's live state (reached over TLS, verified against the endpoint's CA),
    and under ``ca_file`` the CA certificate's path (None for an endpoint serving plain HTTP)."""
    state = endpoint_state(endpoint)
    record = state.load()
    serving = state.serving()
    token = state.ensure_token() if state.token_file.exists() else ""
    ca_file = state.served_ca()
    nodes = []
    for url in record.get("outputs", {}).get("endpoint_urls") or []:
        nodes.append(node_status(url, token, serving["model"], ca_file=ca_file) if serving else {"url": url})
    return {"name": endpoint, "serving": serving, "nodes": nodes, "history": record.get("history", []),
            "ca_file": str(ca_file) if ca_file else None}

