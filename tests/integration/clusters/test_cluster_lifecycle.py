"""A Dask cluster's whole life on the CI control plane, with real hosts behind its servers (the netns compute driver):
create brings up a scheduler, two CPU workers and a GPU-flavor worker configured as CPU, all registered over TLS;
the flights pipeline run on it with its artifacts in Swift, one worker process SIGKILLed while it scores a tuning
fold (its nanny starts it again), gives the same partitions and metrics as a local run;
scale to three workers configures exactly the one new node; delete through the CLI leaves no server, port, floating
IP, security group, key pair, namespace or bridge behind, and deleting again succeeds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from orchestrator.clusters import provision, tls
from orchestrator.clusters.spec import ClusterSpec
from orchestrator.clusters.state import cluster_state
from orchestrator.clusters.wheelhouse import build_wheelhouse, pinned_requirements

from netns_driver.netns_host import free_subnet
from support.chaos_table import record as record_case
from support.netns_clusters import RouteCheckedConfigure, left_behind

pytestmark = [pytest.mark.integration, pytest.mark.openstack]

FLAVOR = os.environ.get("DATAOPS_TEST_FLAVOR", "dataops.cpu.small")
GPU_FLAVOR = os.environ.get("DATAOPS_TEST_GPU_FLAVOR", "dataops.gpu.small")
IMAGE = os.environ.get("DATAOPS_TEST_IMAGE", "dataops-tiny")
TIMEOUT = float(os.environ.get("DATAOPS_TEST_STACK_TIMEOUT", "600"))
DATAOPS = Path(sys.executable).with_name("dataops")


def _client(name: str):
    from distributed import Client

    state = cluster_state(name)
    security = tls.dask_security(tls.issue_certificate(state.tls_dir, tls.CLIENT_NAME))
    return Client(state.load_record()["outputs"]["scheduler_url"], security=security, timeout=30)


def _registered_workers(name: str) -> set[str]:
    with _client(name) as client:
        return {w["name"] for w in client.scheduler_info()["workers"].values()}


def _kill_a_worker_running(name: str, task_prefix: str, run: subprocess.Popen, timeout_s: float = 900) -> dict:
    """SIGKILL the worker process (not its nanny) that is running a task named ``task_prefix``, seen from the
    cluster's own scheduler while ``run`` goes on; return which worker it was, its pid and the task."""
    deadline = time.monotonic() + timeout_s
    with _client(name) as client:
        while run.poll() is None and time.monotonic() < deadline:
            for address, keys in client.processing().items():
                # A submitted function's key is "<name>-<uuid>" (Dask's key_split drops the leading "_" of the name).
                running = [key for key in keys if str(key).startswith(task_prefix + "-")]
                if not running:
                    continue
                pid = client.run(os.getpid, workers=[address])[address]
                worker = client.scheduler_info()["workers"][address]["name"]
                # Only a process of this cluster's own hosts is ever killed: it sits in a dataops namespace.
                namespace = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                                           text=True).stdout.strip()
                assert namespace.startswith("dataops-"), f"pid {pid} of {worker} is in namespace {namespace!r}"
                os.kill(pid, signal.SIGKILL)
                return {"worker": worker, "pid": pid, "task": str(running[0])}
            time.sleep(0.1)
    pytest.fail(f"no {task_prefix} task was seen running on {name} before the run ended")


def _restarted(name: str, killed: dict, timeout_s: float = 120) -> bool:
    """Whether the killed worker's nanny has started a fresh process under the same name."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with _client(name) as client:
            pids = client.run(os.getpid)
            names = {a: w["name"] for a, w in client.scheduler_info()["workers"].items()}
        if any(names.get(a) == killed["worker"] and pid != killed["pid"] for a, pid in pids.items()):
            return True
        time.sleep(2)
    return False


def dataops(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([str(DATAOPS), *args], cwd=cwd, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _run_record(store: str, cwd: Path) -> dict:
    return json.loads(dataops("runs", "show", "latest", "--store", store, "--json", cwd=cwd).stdout)


def test_a_cluster_is_created_runs_a_pipeline_is_scaled_and_deleted_without_leftovers(
    cluster_cloud, clusters_dir, tmp_path_factory, flights_dir, swift_container
):
    name = f"lc{uuid.uuid4().hex[:6]}"
    subnet = free_subnet()
    spec = ClusterSpec.model_validate({
        "name": name, "image": IMAGE, "scheduler": {"flavor": FLAVOR},
        "workers": {"flavor": FLAVOR, "count": 2},
        "gpu_workers": {"flavor": GPU_FLAVOR, "count": 1, "as_cpu": True},
        "network": {"cidr": str(subnet)}, "access": "direct",
        # The operator is the machine itself, on its side of the network's bridge.
        "operator_cidr": f"{subnet.network_address + 1}/32",
    })
    wheelhouse = build_wheelhouse(pinned_requirements(), tmp_path_factory.getbasetemp().parent / "dataops-wheelhouse")
    configure = RouteCheckedConfigure()
    conn = cluster_cloud.conn
    try:
        ready = provision.create_cluster(spec, cluster_cloud, configure=configure, wheelhouse=wheelhouse,
                                         stack_timeout_s=TIMEOUT)
        assert sorted(n.role for n in ready.nodes) == ["gpu_worker", "scheduler", "worker", "worker"]
        assert _registered_workers(name) == {f"{name}-worker-0", f"{name}-worker-1", f"{name}-gpu-worker-0"}
        assert configure.limits == [None]

        on_cluster = f"swift://{swift_container}/on-cluster"
        used_before = cluster_state(name).load_record()["last_used"]
        run = subprocess.Popen([str(DATAOPS), "run", "pipeline.yaml", "--cluster", name, "--store", on_cluster],
                               cwd=flights_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            killed = _kill_a_worker_running(name, "_score_fold", run)
            _, errors = run.communicate(timeout=1800)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode == 0, errors[-3000:]
        assert f"cluster {name}" in errors
        assert _restarted(name, killed), f"the nanny of {killed['worker']} started no fresh worker"
        dataops("run", "pipeline.yaml", "--store", str(flights_dir / "local-store"), cwd=flights_dir)
        remote, local = _run_record(on_cluster, flights_dir), _run_record(str(flights_dir / "local-store"), flights_dir)
        assert remote["status"] == "succeeded" and remote["scheduler"] == ready.scheduler_url
        # Same stage keys, same partitions (rows and order-independent fingerprints), same model quality.
        assert {k: v["key"] for k, v in remote["stages"].items()} == {k: v["key"] for k, v in local["stages"].items()}
        assert remote["stages"]["split"]["partitions"] == local["stages"]["split"]["partitions"]
        for metric in ("roc_auc", "accuracy", "log_loss"):
            assert remote["metrics"][metric] == pytest.approx(local["metrics"][metric], abs=1e-6)
        assert cluster_state(name).load_record()["last_used"] > used_before, "a run restarts the time-to-live"
        record_case("dask-worker-killed-during-tuning-netns-cluster", component="Dask",
                    fault=f"SIGKILL of a worker process of a namespace-host cluster (over TLS, artifacts in Swift) "
                          f"while it scores a tuning fold ({killed['worker']})",
                    must_hold="the run succeeds with the same stage keys, partitions and metrics as a local run; "
                              "the nanny starts a fresh worker",
                    tries=1, held=1, outcomes={"completed, same partitions and metrics": 1})

        scaled = provision.scale_cluster(name, cluster_cloud, workers=3, configure=configure, wheelhouse=wheelhouse,
                                         stack_timeout_s=TIMEOUT)
        assert len(scaled.nodes) == 5
        assert configure.limits[-1] == f"{name}-worker-2", "only the new worker is configured"
        assert _registered_workers(name) == {f"{name}-worker-{i}" for i in range(3)} | {f"{name}-gpu-worker-0"}
    finally:
        server_ids = [s.id for s in conn.compute.servers() if s.name.startswith(name)]
        record = cluster_state(name).load_record() if cluster_state(name).exists() else {}
        network_id = record.get("outputs", {}).get("network_id", "")
        first = subprocess.run([str(DATAOPS), "cluster", "delete", name], capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr[-2000:]
    left = left_behind(conn, name, server_ids, network_id)
    assert left == {k: [] for k in left}
    again = subprocess.run([str(DATAOPS), "cluster", "delete", name], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-2000:]
