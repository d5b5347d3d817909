"""A Dask cluster's whole life on the CI control plane, with real hosts behind its servers (the netns compute driver):
create brings up a scheduler, two CPU workers and a GPU-flavor worker configured as CPU, all registered over TLS;
the flights pipeline run on it with its artifacts in Swift, one worker process SIGKILLed during ingest, another during
the split and another while it scores a tuning fold (their nannies start them again), gives the same partitions and
metrics as a local run;
scale to three workers configures exactly the one new node; delete through the CLI leaves no server, port, floating
IP, security group, key pair, namespace or bridge behind, and deleting again succeeds."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
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


class StagesDone(threading.Thread):
    """Reads a run's progress lines as they come: the stages done (or cached) so far, in order."""

    LINE = re.compile(r"^\s*(?:done|cached)\s+(\S+)")

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.done, self.lines = stream, [], []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line)
            if match := self.LINE.match(line):
                self.done.append(match.group(1))


def _kill_a_worker_running(name: str, run: subprocess.Popen, stages: StagesDone, stage: str, after: str | None,
                           task_prefix: str | None = None, timeout_s: float = 900) -> dict:
    """SIGKILL the worker process (not its nanny) running a task of ``stage`` (once the stage ``after`` is done; a
    task named ``task_prefix``, when given), seen from the cluster's own scheduler while ``run`` goes on; return which
    worker it was, its pid, the task and the stages done when it was killed."""
    deadline = time.monotonic() + timeout_s
    with _client(name) as client:
        while run.poll() is None and time.monotonic() < deadline:
            if after is not None and after not in stages.done:
                time.sleep(0.05)
                continue
            for address, keys in client.processing().items():
                # A submitted function's key is "<name>-<uuid>" (Dask's key_split drops the leading "_" of the name).
                running = [key for key in keys if task_prefix is None or str(key).startswith(task_prefix + "-")]
                if not running:
                    continue
                pid = client.run(os.getpid, workers=[address])[address]
                worker = client.scheduler_info()["workers"][address]["name"]
                # Only a process of this cluster's own hosts is ever killed: it sits in a dataops namespace.
                namespace = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True,
                                           text=True).stdout.strip()
                assert namespace.startswith("dataops-"), f"pid {pid} of {worker} is in namespace {namespace!r}"
                os.kill(pid, signal.SIGKILL)
                done = list(stages.done)
                assert not any(d == stage or d.startswith(stage + ".") for d in done), \
                    f"{stage} was done before the kill landed: {done}"
                return {"stage": stage, "worker": worker, "pid": pid, "task": str(running[0]), "done_before": done}
            time.sleep(0.1)
    pytest.fail(f"no task of {stage} was seen running on {name} before the run ended")


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
                               cwd=flights_dir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        stages = StagesDone(run.stderr)
        stages.start()
        try:
            # One worker killed in each of three stages of the same run: ingest (the first source read), the split
            # (its partitions written and proved disjoint) and tuning (a fold being scored).
            kills = [_kill_a_worker_running(name, run, stages, "ingest", after=None),
                     _kill_a_worker_running(name, run, stages, "split", after="features"),
                     _kill_a_worker_running(name, run, stages, "train", after="split", task_prefix="_score_fold")]
            run.wait(timeout=1800)
            stages.join(30)
        finally:
            if run.poll() is None:
                run.kill()
        errors = "".join(stages.lines)
        assert run.returncode == 0, errors[-3000:]
        assert f"cluster {name}" in errors
        for killed in kills:
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
        words = {"ingest": "ingest (reading the first source)", "split": "the split",
                 "train": "tuning (scoring a fold)"}
        for killed in kills:
            case = "tuning" if killed["stage"] == "train" else killed["stage"]
            record_case(f"dask-worker-killed-during-{case}-netns-cluster", component="Dask",
                        fault=f"SIGKILL of a worker process of a namespace-host cluster (over TLS, artifacts in "
                              f"Swift) during {words[killed['stage']]}, one of three kills in the same run",
                        must_hold="the run succeeds with the same stage keys, partitions and metrics as a local run; "
                                  "the nanny starts a fresh worker",
                        tries=1, held=1, outcomes={"completed, same partitions and metrics": 1},
                        notes=f"killed {killed['worker']} running {killed['task'][:40]}; stages done before: "
                              f"{', '.join(killed['done_before']) or 'none'}")
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
