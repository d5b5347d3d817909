"""MLServer as a serving peer of ``bench/serving.py``: its scikit-learn runtime serving the benchmark's forest over
the same V2 protocol, from a virtualenv of its own (MLServer never enters the project's), cached under
``/var/cache/dataops-peers`` (``DATAOPS_PEERS_CACHE`` elsewhere) like the other peers' virtualenvs.

Each configuration is a folder MLServer starts from: ``settings.json`` (the server: loopback, its own HTTP, gRPC
and metrics ports, ``parallel_workers``) and ``model-settings.json`` (the model: ``mlserver_sklearn.SKLearnModel``
on the pickled scikit-learn pipeline, answering ``predict_proba`` as MLflow's baseline does).

With ``parallel_workers`` above 0, every port is a free one of its own (HTTP, gRPC and metrics: two MLServers
on the defaults would collide), and uvloop is pinned (``UVLOOP_PIN`` says why).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PEERS = Path(os.environ.get("DATAOPS_PEERS_CACHE", "/var/cache/dataops-peers"))
VENV = PEERS / "mlserver-venv"
MLSERVER_VERSION = "1.7.1"
# An MLServer parallel worker calls asyncio.get_event_loop() before it has a loop (mlserver/parallel/worker.py,
# _ignore_signals); from uvloop 0.22 on that raises "There is no current event loop", the worker dies at once, is
# restarted, dies again, and the model never becomes ready: why `parallel_workers: 1` never answered. uvloop 0.21
# answers with a new loop, as asyncio does.
UVLOOP_PIN = "uvloop<0.22"
# 0: inference in the HTTP process; 1 and 2: a pool of worker processes (the cores of the 2-core machine).
PARALLEL_WORKERS = (0, 1, 2)


def requirements() -> list[str]:
    """MLServer and its scikit-learn runtime, with the scikit-learn that pickled the forest (pickles need it), and
    a uvloop its parallel workers can start on (``UVLOOP_PIN``)."""
    import sklearn

    return [f"mlserver=={MLSERVER_VERSION}", f"mlserver-sklearn=={MLSERVER_VERSION}",
            f"scikit-learn=={sklearn.__version__}", UVLOOP_PIN]


def mlserver_command() -> Path | None:
    """The ``mlserver`` command: ``MLSERVER_BIN``, else the cached virtualenv's when it is installed."""
    if os.environ.get("MLSERVER_BIN"):
        return Path(os.environ["MLSERVER_BIN"])
    stamp = VENV / ".dataops-installed"
    if stamp.exists() and json.loads(stamp.read_text()) == requirements():
        return VENV / "bin" / "mlserver"
    return None


def install_mlserver() -> Path:
    """Make (once, under a lock: several runs may share the cache) MLServer's virtualenv; return its command."""
    PEERS.mkdir(parents=True, exist_ok=True)
    with open(PEERS / "mlserver-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        command = mlserver_command()
        if command:
            return command
        print(f"installing MLServer into {VENV} (once)", flush=True)
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "--quiet", *requirements()], check=True)
        (VENV / ".dataops-installed").write_text(json.dumps(requirements()))
        return VENV / "bin" / "mlserver"


def model_folder(model_dir: Path, parallel_workers: int, ports: dict[str, int]) -> Path:
    """Write the folder ``mlserver start`` serves ``model_dir``'s forest from, with ``parallel_workers`` and
    ``ports`` (``http``, ``grpc``, ``metrics``)."""
    folder = model_dir.parent / f"mlserver-pw{parallel_workers}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_dir / "sklearn.pkl", folder / "model.joblib")  # joblib loads plain pickles
    (folder / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": ports["http"], "grpc_port": ports["grpc"],
        "metrics_port": ports["metrics"], "parallel_workers": parallel_workers, "debug": False,
        # Its multiprocess metrics files, which it would otherwise leave in whatever folder it was started from.
        "metrics_dir": str(folder / ".metrics"),
    }, indent=1))
    (folder / "model-settings.json").write_text(json.dumps({
        "name": "bench-forest", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }, indent=1))
    return folder


def v2_body(row: dict, numeric: list[str], categorical: list[str]) -> bytes:
    """One row as a V2 request MLServer decodes into a DataFrame (its pandas codec), asking for probabilities."""
    inputs = [{"name": c, "shape": [1], "datatype": "FP32", "data": [row[c]]} for c in numeric]
    inputs += [{"name": c, "shape": [1], "datatype": "BYTES", "data": [row[c]], "parameters": {"content_type": "str"}}
               for c in categorical]
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs,
                       "outputs": [{"name": "predict_proba"}]}).encode()
