"""Serving benchmark: the dataops inference server against an HTTP floor and a minimal ONNX app, same run.

    .venv/bin/python bench/serving.py [--rounds 3] [--seconds 10] [--connections 16]

Starts, on free loopback ports, each with the same number of uvicorn workers (uvloop + httptools):
  * ``hello-asgi``  the HTTP floor of the server's own stack: a bare ASGI app (what the server is written in)
                    that reads the POST body and answers a constant;
  * ``hello-starlette`` the floor of ``../shared/notes/baselines.md``: the same on a Starlette route;
  * ``minimal``     Starlette + onnxruntime: parse one record with orjson, run the session, answer JSON;
  * ``dataops-v2``  this project's server as it starts by default (access log on, natural micro-batching),
                    V2 JSON ``/infer``;
  * ``dataops-predict`` the same server's records route;
  * ``dataops-unbatched`` the server with micro-batching off (``--max-batch-rows 1``);
  * ``dataops-v2-tls`` ``dataops-v2`` over HTTPS, with a certificate of its own CA as an endpoint's nodes serve
                    (the load generators keep their TLS connections alive, as clients of an endpoint do);
  * ``mlflow``      ``mlflow models serve`` of the same scikit-learn random forest, when an ``mlflow`` command
                    is found: ``MLFLOW_BIN``, else ``bench/.data/mlflow-venv`` (``--install-mlflow`` makes that
                    virtualenv; MLflow never enters the project's own), else PATH;
  * ``mlserver-pwN`` MLServer's scikit-learn runtime on the same forest, same V2 protocol, ``parallel_workers: N``
                    (0, 1 and 2), from its own virtualenv under ``/var/cache/dataops-peers`` (``--install-mlserver``
                    makes it; ``MLSERVER_BIN`` names another); ``bench/_mlserver.py`` says how it is configured.
Each is driven from another process (wrk when installed, else a Python keep-alive load generator) in
interleaved rounds; the script prints req/s, p50 and p99 medians and per-round ratios against the goals.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data" / "serving"
PYTHON = sys.executable
MLFLOW_VENV = ROOT / "bench" / ".data" / "mlflow-venv"
MLFLOW_VENV_BIN = MLFLOW_VENV / "bin" / "mlflow"

NUMERIC = ["dep_hour", "distance", "prev_delay", "taxi_out", "day_of_week"]
CATEGORICAL = ["carrier", "origin", "dest"]
ROW = {"dep_hour": 9.0, "distance": 500.0, "prev_delay": 3.0, "taxi_out": 15.0, "day_of_week": 3.0,
       "carrier": "AA", "origin": "JFK", "dest": "LAX"}


# ---------------------------------------------------------------- the model (a random forest, as in the baselines)

def build_model(folder: Path) -> Path:
    """Train a random forest on synthetic mixed data, export it by the model folder contract, and pickle the
    scikit-learn pipeline too (for MLflow). Cached: built once per checkout."""
    if (folder / "model_card.json").exists():
        return folder
    import hashlib
    import pickle

    import numpy as np
    import pandas as pd
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(0)
    rows = 20000
    frame = pd.DataFrame({
        "dep_hour": rng.integers(5, 24, rows).astype(np.float32),
        "distance": rng.uniform(100, 3000, rows).astype(np.float32),
        "prev_delay": rng.normal(10, 20, rows).astype(np.float32),
        "taxi_out": rng.uniform(5, 40, rows).astype(np.float32),
        "day_of_week": rng.integers(1, 8, rows).astype(np.float32),
        "carrier": rng.choice(["AA", "UA", "DL", "B6", "WN"], rows),
        "origin": rng.choice(["JFK", "LGA", "EWR"], rows),
        "dest": rng.choice(["LAX", "SFO", "ORD", "ATL", "MIA", "BOS"], rows),
    })
    score = (frame.dep_hour - 14) / 5 + (frame.carrier == "UA") * 0.8 + frame.prev_delay / 30 + frame.taxi_out / 40
    label = (score + rng.normal(0, 0.7, rows) > 0.5).astype(np.int64)
    pipeline = Pipeline([
        ("prepare", ColumnTransformer([("numeric", SimpleImputer(), NUMERIC),
                                       ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)])),
        ("forest", RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=1, random_state=0)),
    ]).fit(frame, label)
    types = [(c, FloatTensorType([None, 1])) for c in NUMERIC] + [(c, StringTensorType([None, 1])) for c in CATEGORICAL]
    onnx_model = convert_sklearn(pipeline, initial_types=types, options={"zipmap": False},
                                 target_opset={"": 17, "ai.onnx.ml": 3})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(onnx_model.SerializeToString())
    (folder / "sklearn.pkl").write_bytes(pickle.dumps(pipeline))
    card = {
        "name": "bench-forest", "version": 1, "task": "classification",
        "inputs": [{"name": c, "datatype": "FP32", "nullable": False, "min": float(frame[c].min()),
                    "max": float(frame[c].max())} for c in NUMERIC]
        + [{"name": c, "datatype": "BYTES", "nullable": False, "allowed": sorted(frame[c].unique().tolist())}
           for c in CATEGORICAL],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
        "classes": [0, 1],
        "files": {"model.onnx": {"sha256": hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest(),
                                 "size": (folder / "model.onnx").stat().st_size}},
    }
    (folder / "model_card.json").write_text(json.dumps(card, indent=2))
    return folder


# ---------------------------------------------------------------- baseline apps (run as child processes)

async def hello_asgi(scope, receive, send):
    if scope["type"] != "http":
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
        return
    message = {"more_body": True}
    while message.get("more_body", False):
        message = await receive()
    body = b'{"hello":"world"}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})


def hello_asgi_app():
    return hello_asgi


def hello_app():
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def hello(request):
        await request.body()
        return Response(b'{"hello":"world"}', media_type="application/json")

    return Starlette(routes=[Route("/hello", hello, methods=["POST"])])


def minimal_app(model_dir: str):
    import numpy as np
    import onnxruntime as ort
    import orjson
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(Path(model_dir) / "model.onnx"), options, providers=["CPUExecutionProvider"])

    async def predict(request):
        record = orjson.loads(await request.body())
        feeds = {c: np.array([[record[c]]], dtype=np.float32) for c in NUMERIC}
        feeds.update({c: np.array([[record[c]]], dtype=object) for c in CATEGORICAL})
        label, proba = session.run(None, feeds)
        return Response(orjson.dumps({"label": label.tolist(), "probabilities": proba.tolist()}),
                        media_type="application/json")

    return Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def minimal_app_from_env():
    return minimal_app(os.environ["BENCH_MODEL_DIR"])


def serve_baseline(name: str, port: int, model_dir: str, workers: int) -> None:
    import uvicorn

    os.environ["BENCH_MODEL_DIR"] = model_dir
    factory = {"hello-asgi": "serving:hello_asgi_app", "hello-starlette": "serving:hello_app"}.get(
        name, "serving:minimal_app_from_env")
    uvicorn.run(factory, factory=True, app_dir=str(Path(__file__).parent), host="127.0.0.1", port=port,
                workers=workers, loop="uvloop", http="httptools", access_log=False, log_level="warning")


# ---------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Target:
    def __init__(self, name: str, command: list[str], port: int, path: str, body: bytes, ready_path: str,
                 env: dict | None = None, ca: str | None = None):
        self.name, self.command, self.port, self.path, self.body = name, command, port, path, body
        self.ready_path = ready_path
        self.ca = ca  # the CA of an HTTPS target's certificate; None for plain HTTP
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        start_new_session=True, env=self.env)

    def wait_ready(self, timeout: float = 180.0) -> bool:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                conn = (http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5, context=_client_tls(self.ca))
                        if self.ca else http.client.HTTPConnection("127.0.0.1", self.port, timeout=5))
                method = "POST" if self.ready_path == self.path else "GET"
                conn.request(method, self.ready_path, body=self.body if method == "POST" else None,
                             headers={"Content-Type": "application/json"})
                if conn.getresponse().status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.3)
        return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


# ---------------------------------------------------------------- load generators

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else float("nan")


def drive_wrk(target: Target, seconds: int, connections: int, workdir: Path) -> dict:
    script = workdir / f"{target.name}.lua"
    script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                      f'wrk.body = [==[{target.body.decode()}]==]\n')
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script),
                          f"{'https' if target.ca else 'http'}://127.0.0.1:{target.port}{target.path}"],
                         capture_output=True, text=True,
                         check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    return {"rps": rps, "p50": _wrk_ms(out, "50%"), "p99": _wrk_ms(out, "99%"),
            "errors": int(errors.group(1)) if errors else 0,
            "socket_errors": socket_errors.group(0) if socket_errors else ""}


def _client_tls(ca: str | None):
    import ssl

    return ssl.create_default_context(cafile=ca) if ca else None


async def _python_load(port: int, path: str, body: bytes, seconds: float, connections: int,
                       ca: str | None = None) -> dict:
    request = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds

    async def connection():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_client_tls(ca))
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not head.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    return {"rps": len(latencies) / elapsed, "p50": pick(0.5), "p99": pick(0.99), "errors": errors, "socket_errors": ""}


def drive_python(target: Target, seconds: int, connections: int, workdir: Path) -> dict:
    """The Python generator runs in its own process so it does not share an interpreter with anything measured."""
    out = subprocess.run([PYTHON, __file__, "--drive", str(target.port), target.path, str(seconds), str(connections),
                          *([target.ca] if target.ca else [])],
                         input=target.body, capture_output=True, check=True).stdout
    return json.loads(out)


# ---------------------------------------------------------------- the run

def server_tls(directory: Path):
    """A CA and a certificate for 127.0.0.1, made as an endpoint's are (``orchestrator.deploy.tls``)."""
    sys.path.insert(0, str(ROOT))
    from orchestrator.deploy import tls

    tls.ensure_endpoint_ca(directory, "bench")
    return tls.issue_server_certificate(directory, "bench", ["localhost"], ["127.0.0.1"])


def build_targets(model_dir: Path, workers: int) -> list[Target]:
    import orjson

    v2_body = orjson.dumps({"inputs": [
        {"name": c, "shape": [1, 1], "datatype": "FP32" if c in NUMERIC else "BYTES", "data": [ROW[c]]}
        for c in NUMERIC + CATEGORICAL]})
    records = orjson.dumps({"records": [ROW]})
    dataops = [PYTHON, "-m", "orchestrator.serving", str(model_dir), "--workers", str(workers), "--host", "127.0.0.1"]
    targets = []

    def add(name, command, path, body, ready=None):
        port = free_port()
        targets.append(Target(name, command + ["--port", str(port)] if command[1] == "-m" else command + [str(port)],
                              port, path, body, ready or path))

    for floor in ("hello-asgi", "hello-starlette"):
        add(floor, [PYTHON, __file__, "--serve", floor, str(model_dir), str(workers)], "/hello", b'{"x":1}')
    add("minimal", [PYTHON, __file__, "--serve", "minimal", str(model_dir), str(workers)], "/predict", orjson.dumps(ROW))
    add("dataops-v2", dataops, "/v2/models/bench-forest/infer", v2_body, "/v2/health/ready")
    add("dataops-predict", dataops, "/v2/models/bench-forest/predict", records, "/v2/health/ready")
    add("dataops-unbatched", dataops + ["--max-batch-rows", "1"], "/v2/models/bench-forest/infer", v2_body,
        "/v2/health/ready")
    tls = server_tls(DATA / "tls")
    add("dataops-v2-tls", dataops + ["--tls-cert", str(tls.cert), "--tls-key", str(tls.key)],
        "/v2/models/bench-forest/infer", v2_body, "/v2/health/ready")
    targets[-1].ca = str(tls.ca)
    mlflow = (os.environ.get("MLFLOW_BIN") or (str(MLFLOW_VENV_BIN) if MLFLOW_VENV_BIN.exists() else None)
              or shutil.which("mlflow"))
    if mlflow:
        mlflow_dir = prepare_mlflow_model(model_dir, Path(mlflow))
        if mlflow_dir:
            port = free_port()
            body = json.dumps({"dataframe_records": [ROW]}).encode()
            targets.append(Target("mlflow", [mlflow, "models", "serve", "-m", str(mlflow_dir), "--env-manager", "local",
                                             "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)],
                                  port, "/invocations", body, "/invocations",
                                  # its scoring server starts `uvicorn` from PATH: the one of its own virtualenv
                                  env={"PATH": f"{Path(mlflow).parent}{os.pathsep}{os.environ.get('PATH', '')}"}))
    else:
        print("mlflow: no `mlflow` command found (run with --install-mlflow, or set MLFLOW_BIN to one in its own "
              "virtualenv); skipping that baseline")
    targets.extend(mlserver_targets(model_dir))
    return targets


def mlserver_targets(model_dir: Path) -> list[Target]:
    """MLServer on the same forest, one target per ``parallel_workers`` setting, each on free ports of its own."""
    sys.path.insert(0, str(ROOT))
    from bench import _mlserver

    command = _mlserver.mlserver_command()
    if command is None:
        print("mlserver: not installed (run with --install-mlserver, or set MLSERVER_BIN); skipping that baseline")
        return []
    targets = []
    for parallel_workers in _mlserver.PARALLEL_WORKERS:
        ports = {"http": free_port(), "grpc": free_port(), "metrics": free_port()}
        folder = _mlserver.model_folder(model_dir, parallel_workers, ports)
        targets.append(Target(f"mlserver-pw{parallel_workers}", [str(command), "start", str(folder)], ports["http"],
                              "/v2/models/bench-forest/infer", _mlserver.v2_body(ROW, NUMERIC, CATEGORICAL),
                              "/v2/models/bench-forest/ready",
                              env={"PATH": f"{command.parent}{os.pathsep}{os.environ.get('PATH', '')}"}))
    return targets


def install_mlflow() -> None:
    """MLflow in a virtualenv of its own, so that it can never change the project's versions."""
    if MLFLOW_VENV_BIN.exists():
        return
    print(f"installing MLflow into {MLFLOW_VENV} (once)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run([str(MLFLOW_VENV / "bin" / "pip"), "install", "--quiet", "mlflow", "scikit-learn", "pandas"],
                   check=True)


def prepare_mlflow_model(model_dir: Path, mlflow: Path) -> Path | None:
    """Save the scikit-learn pipeline as an MLflow model with MLflow's own interpreter (never imported here)."""
    target = model_dir.parent / "mlflow-model"
    if (target / "MLmodel").exists():
        return target
    python = mlflow.parent / "python"
    code = ("import pickle,sys,mlflow.sklearn as m; p=pickle.load(open(sys.argv[1],'rb'));"
            "m.save_model(p, sys.argv[2], pyfunc_predict_fn='predict_proba', serialization_format='cloudpickle')")
    shutil.rmtree(target, ignore_errors=True)  # a failed earlier save leaves a folder save_model refuses
    result = subprocess.run([str(python), "-c", code, str(model_dir / "sklearn.pkl"), str(target)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print(f"mlflow: could not save the model ({result.stderr.strip()[-300:]}); skipping that baseline")
        return None
    return target


def median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", help="comma-separated target names")
    parser.add_argument("--json", type=Path, help="also write raw results here")
    parser.add_argument("--load-generator", choices=["auto", "wrk", "python"], default="auto",
                        help="auto: wrk when installed, else the Python generator")
    parser.add_argument("--install-mlflow", action="store_true",
                        help=f"create {MLFLOW_VENV.relative_to(ROOT)} with MLflow first, for the MLflow baseline")
    parser.add_argument("--install-mlserver", action="store_true",
                        help="create MLServer's virtualenv (cached under /var/cache/dataops-peers) first")
    args = parser.parse_args()
    if args.install_mlflow and not os.environ.get("MLFLOW_BIN"):
        install_mlflow()
    if args.install_mlserver and not os.environ.get("MLSERVER_BIN"):
        sys.path.insert(0, str(ROOT))
        from bench._mlserver import install_mlserver

        install_mlserver()

    model_dir = build_model(DATA / "bench-forest")
    targets = build_targets(model_dir, args.workers)
    if args.only:
        targets = [t for t in targets if t.name in args.only.split(",")]
    use_wrk = args.load_generator == "wrk" or (args.load_generator == "auto" and shutil.which("wrk"))
    drive = drive_wrk if use_wrk else drive_python
    print(f"load generator: {'wrk -t1' if drive is drive_wrk else 'python asyncio' + ('' if args.load_generator == 'python' else ' (wrk not installed)')}, "
          f"{args.connections} connections, {args.rounds} interleaved rounds of {args.seconds}s, "
          f"{args.workers} server worker(s); loadavg {os.getloadavg()[0]:.2f}")
    results: dict[str, list[dict]] = {t.name: [] for t in targets}
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        try:
            for target in targets:
                target.start()
            for target in list(targets):
                if not target.wait_ready():
                    print(f"{target.name}: did not start; skipped")
                    target.stop()
                    targets.remove(target)
            for target in targets:  # warm-up
                drive(target, 2, args.connections, Path(tmp))
            for round_index in range(args.rounds):
                for target in targets:
                    result = drive(target, args.seconds, args.connections, Path(tmp))
                    results[target.name].append(result)
                    print(f"round {round_index + 1} {target.name:16s} {result['rps']:9.0f} req/s  "
                          f"p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  errors {result['errors']}",
                          flush=True)
        finally:
            for target in targets:
                target.stop()
    report(results, args)
    return 0


def report(results: dict[str, list[dict]], args) -> None:
    print("\n| target | req/s (median) | min..max | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|")
    for name, runs in results.items():
        if not runs:
            continue
        rps = [r["rps"] for r in runs]
        print(f"| {name} | {median(rps):,.0f} | {min(rps):,.0f}..{max(rps):,.0f} | {median([r['p50'] for r in runs]):.2f} "
              f"| {median([r['p99'] for r in runs]):.2f} | {sum(r['errors'] for r in runs)} |")

    def ratio(a, b):
        if not results.get(a) or not results.get(b):
            return float("nan")
        return median([x["rps"] / y["rps"] for x, y in zip(results[a], results[b])])

    print("\n| ratio (median of per-round req/s ratios) | value | goal |\n|---|---|---|")
    for a, b, goal in [("dataops-v2", "hello-asgi", ">= 0.85"), ("dataops-predict", "hello-asgi", ">= 0.85"),
                       ("dataops-v2", "hello-starlette", ""), ("dataops-v2", "minimal", ""),
                       ("dataops-v2", "dataops-unbatched", ""), ("dataops-v2", "mlflow", ">= 100"),
                       ("dataops-v2", "mlserver-pw0", ">= 100"), ("dataops-v2", "mlserver-pw1", ">= 100"),
                       ("dataops-v2", "mlserver-pw2", ">= 100"),
                       ("dataops-v2-tls", "dataops-v2", ""),
                       ("minimal", "hello-asgi", ""), ("hello-starlette", "hello-asgi", "")]:
        print(f"| {a} / {b} | {ratio(a, b):.2f} | {goal} |")
    for name in ("dataops-v2", "dataops-predict", "dataops-unbatched", "dataops-v2-tls"):
        if results.get(name):
            print(f"{name}: p99 median {median([r['p99'] for r in results[name]]):.2f} ms (goal <= 15 ms at "
                  f"{args.connections} connections)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve_baseline(sys.argv[2], int(sys.argv[5]), sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--drive":
        port, path, seconds, connections = int(sys.argv[2]), sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
        ca = sys.argv[6] if len(sys.argv) > 6 else None
        print(json.dumps(asyncio.run(_python_load(port, path, sys.stdin.buffer.read(), seconds, connections, ca))))
    else:
        sys.exit(main())
