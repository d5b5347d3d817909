"""The ASGI application: Open Inference Protocol (V2) REST routes, a records route for people, the repository
extension, health and metrics, behind a thin guard that checks the bearer token, counts and logs every request.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import importlib
import logging
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orchestrator import __version__
from orchestrator.serving import metrics
from orchestrator.serving.accesslog import AccessLog
from orchestrator.serving.batching import MicroBatcher
from orchestrator.serving.capture import CaptureSampler, CaptureWriter, FolderCaptureWriter
from orchestrator.serving.errors import (BadRequest, ModelLoadError, ModelNotFound, PayloadTooLarge, ServingError,
                                         UnsupportedMediaType)
from orchestrator.serving.model import LoadedModel
from orchestrator.serving.repository import ModelRepository
from orchestrator.serving.settings import ServerSettings, read_token
from orchestrator.serving.tensors import (RANGE_POLICIES, check_values, decode_infer_request, decode_records,
                                          encode_infer_response, encode_predictions)

log = logging.getLogger("dataops.serving")

JSON = "application/json"
_DECODERS = {"identity": None, "gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}  # zlib wbits per encoding
SERVER_NAME = "dataops-serving"
EXTENSIONS = ["binary_tensor_data", "model_repository", "predict_records"]


def _json(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON, headers=headers)


def _error(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _label(request: Request, route: str, model: str = "") -> None:
    """Tell the guard which route and model this request was, for metrics and the access log."""
    state = request.scope.setdefault("state", {})
    state["route"] = route
    if model:
        state["model"] = model


def answers_errors(route: str):
    """Turn ServingError into its status and any other failure into a logged 500 that never escapes."""

    def wrap(endpoint):
        @functools.wraps(endpoint)
        async def wrapped(request: Request) -> Response:
            _label(request, route, request.path_params.get("name", ""))
            try:
                return await endpoint(request)
            except ServingError as exc:
                return _error(exc.status, str(exc))
            except Exception:  # the one place an unexpected failure becomes a 500 (and a logged traceback)
                log.exception("unexpected failure on %s %s", request.method, request.url.path)
                return _error(500, "internal error (logged on the server)")

        return wrapped

    return wrap


async def read_body(request: Request, limit: int) -> bytes:
    """Read the body (gzip or deflate encoded bodies are inflated), refusing it as soon as it is known to exceed
    ``limit`` bytes, compressed or not.

    Raises:
        PayloadTooLarge: the body is over the limit.
        UnsupportedMediaType: the body is in an encoding other than identity, gzip or deflate.
        BadRequest: the Content-Length is malformed or the compressed body is corrupt.
    """
    encoding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if encoding not in _DECODERS:
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported: use identity, gzip or deflate")
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise BadRequest(f"Content-Length: expected an integer, got {length[:30]!r}")
        if int(length) > limit:
            raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {limit} bytes")
        body = await request.body()
    else:
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
            chunks.append(chunk)
        body = b"".join(chunks)
    wbits = _DECODERS[encoding]
    if wbits is None:
        return body
    inflater = zlib.decompressobj(wbits)
    try:
        inflated = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"request body is not valid {encoding} data: {exc}") from exc
    if len(inflated) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"request body inflates to more than the limit of {limit} bytes")
    return inflated


class InferenceService:
    """Holds the repository, one micro-batcher per loaded model version, and the capture sampler."""

    def __init__(self, settings: ServerSettings, repository: ModelRepository, capture: CaptureSampler | None):
        if settings.range_policy not in RANGE_POLICIES:
            raise ModelLoadError(f"range policy must be one of {RANGE_POLICIES}, got {settings.range_policy!r}")
        self.settings = settings
        self.repository = repository
        self.capture = capture
        self.executor = ThreadPoolExecutor(max(1, settings.batch_threads), thread_name_prefix="onnxruntime")
        self._batchers: dict[int, MicroBatcher] = {}

    def batcher(self, model: LoadedModel) -> MicroBatcher:
        batcher = self._batchers.get(id(model))
        if batcher is None or batcher.model is not model:
            histogram = metrics.BATCH_ROWS.labels(model.name)
            batcher = MicroBatcher(model, self.executor, self.settings.max_batch_rows,
                                   self.settings.max_wait_ms / 1000.0, histogram.observe)
            self._batchers[id(model)] = batcher
        return batcher

    def forget(self, name: str) -> None:
        self._batchers = {key: b for key, b in self._batchers.items() if b.model.name != name}

    async def score(self, model: LoadedModel, decoded) -> dict:
        flags = check_values(decoded, model, self.settings.range_policy)
        for name, rows in flags.items():
            metrics.OUT_OF_RANGE.labels(model.name, name).inc(len(rows))
        results = await self.batcher(model).infer(decoded.feeds, decoded.rows)
        if self.capture is not None:
            self.capture.offer(model.name, model.version, decoded.request_id, decoded.feeds, results, flags)
        return results

    async def load_all(self) -> None:
        for name in self.repository.names:
            try:
                await run_in_threadpool(self.repository.load, name)
            except ServingError as exc:
                log.error("model %s could not be loaded: %s", name, exc)


def build_routes(service: InferenceService) -> list[Route]:
    repository = service.repository
    limit = service.settings.max_body_bytes

    @answers_errors("live")
    async def live(request: Request) -> Response:
        return _json({"live": True})

    @answers_errors("ready")
    async def ready(request: Request) -> Response:
        ok = repository.all_ready()
        return _json({"ready": ok}, 200 if ok else 503)

    @answers_errors("server_metadata")
    async def server_metadata(request: Request) -> Response:
        return _json({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})

    @answers_errors("model_metadata")
    async def model_metadata(request: Request) -> Response:
        model = repository.get(request.path_params["name"], request.path_params.get("version"))
        return _json(model.metadata())

    @answers_errors("model_ready")
    async def model_ready(request: Request) -> Response:
        name, version = request.path_params["name"], request.path_params.get("version")
        if name not in repository.names:
            raise ModelNotFound(f"unknown model {name!r}: served models are {repository.names}")
        ok = repository.is_ready(name, version)
        return _json({"name": name, "ready": ok}, 200 if ok else 503)

    @answers_errors("infer")
    async def infer(request: Request) -> Response:
        model = repository.get(request.path_params["name"], request.path_params.get("version"))
        body = await read_body(request, limit)
        decoded = decode_infer_request(body, request.headers.get("inference-header-content-length"), model)
        results = await service.score(model, decoded)
        payload, header_length = encode_infer_response(model, decoded, results)
        if header_length is None:
            return Response(payload, media_type=JSON)
        return Response(payload, media_type="application/octet-stream",
                        headers={"Inference-Header-Content-Length": str(header_length)})

    @answers_errors("predict")
    async def predict(request: Request) -> Response:
        model = repository.get(request.path_params["name"], request.path_params.get("version"))
        decoded = decode_records(await read_body(request, limit), model)
        results = await service.score(model, decoded)
        return Response(encode_predictions(model, decoded, results), media_type=JSON)

    @answers_errors("repository_index")
    async def repository_index(request: Request) -> Response:
        await read_body(request, limit)
        return _json(await run_in_threadpool(repository.index))

    @answers_errors("repository_load")
    async def repository_load(request: Request) -> Response:
        await read_body(request, limit)
        name = request.path_params["name"]
        await run_in_threadpool(repository.load, name)
        service.forget(name)
        return _json({})

    @answers_errors("repository_unload")
    async def repository_unload(request: Request) -> Response:
        await read_body(request, limit)
        name = request.path_params["name"]
        repository.unload(name)
        service.forget(name)
        return _json({})

    @answers_errors("metrics")
    async def metrics_route(request: Request) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    model = "/v2/models/{name}"
    versioned = "/v2/models/{name}/versions/{version}"
    return [  # the inference routes first: the router tries them in order
        Route(f"{model}/infer", infer, methods=["POST"]),
        Route(f"{model}/predict", predict, methods=["POST"]),
        Route(f"{versioned}/infer", infer, methods=["POST"]),
        Route(f"{versioned}/predict", predict, methods=["POST"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2", server_metadata, methods=["GET"]),
        Route(model, model_metadata, methods=["GET"]),
        Route(versioned, model_metadata, methods=["GET"]),
        Route(f"{model}/ready", model_ready, methods=["GET"]),
        Route(f"{versioned}/ready", model_ready, methods=["GET"]),
        Route("/v2/repository/index", repository_index, methods=["POST"]),
        Route("/v2/repository/models/{name}/load", repository_load, methods=["POST"]),
        Route("/v2/repository/models/{name}/unload", repository_unload, methods=["POST"]),
        Route("/metrics", metrics_route, methods=["GET"]),
    ]


class Guard:
    """Pure ASGI wrapper: bearer token check (health routes stay open for probes), in-flight gauge, request
    counter and latency histogram, and one structured access-log line per request. Headers are never logged."""

    def __init__(self, app, token: str | None, log_requests: bool):
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None
        self.access_log = AccessLog() if log_requests else None
        self._series: dict[tuple, tuple] = {}  # labelled metric children, looked up once per label set

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [0]

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        metrics.IN_FLIGHT.inc()
        try:
            if self.expected is not None and not scope["path"].startswith("/v2/health/") and not self._authorized(scope):
                scope.setdefault("state", {})["route"] = "unauthorized"
                await Response(orjson.dumps({"error": "missing or invalid bearer token"}), 401, media_type=JSON,
                               headers={"WWW-Authenticate": "Bearer"})(scope, receive, send_and_note)
            else:
                await self.app(scope, receive, send_and_note)
        finally:
            metrics.IN_FLIGHT.dec()
            elapsed = time.perf_counter() - started
            state = scope.get("state") or {}
            route, model = state.get("route", "other"), state.get("model", "")
            key = (route, model, status[0])
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = (metrics.REQUESTS.labels(route, model, str(status[0])),
                                              metrics.LATENCY.labels(route, model))
            series[0].inc()
            series[1].observe(elapsed)
            if self.access_log is not None:
                client = scope.get("client")
                self.access_log.write(orjson.dumps({
                    "ts": time.time(), "client": f"{client[0]}:{client[1]}" if client else None,
                    "method": scope["method"], "path": scope["path"], "status": status[0],
                    "ms": round(elapsed * 1000, 3), "route": route, "model": model,
                }).decode())

    def _authorized(self, scope) -> bool:
        for key, value in scope["headers"]:
            if key == b"authorization":
                return hmac.compare_digest(value, self.expected)
        return False


def load_capture_writer(settings: ServerSettings) -> CaptureWriter:
    """Call the ``module:function`` named by ``settings.capture_writer`` with the settings.

    Raises:
        ModelLoadError: the name cannot be imported or the function fails.
    """
    module_name, _, function_name = settings.capture_writer.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
        return factory(settings)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ModelLoadError(f"capture writer {settings.capture_writer!r} cannot be created: {exc}") from exc


def build_app(settings: ServerSettings, capture_writer: CaptureWriter | None = None):
    """Build the ASGI app for ``settings``. Models load in the background once the server runs.

    Args:
        settings: The server settings.
        capture_writer: Where sampled captures go; defaults to a folder writer on ``settings.capture_dir``.

    Raises:
        ModelLoadError: a model folder has no readable card, or the token file is unusable.
    """
    token = read_token(settings)
    repository = ModelRepository([Path(f) for f in settings.model_folders],
                                 Path(settings.repository_dir) if settings.repository_dir else None,
                                 settings.device, settings.intra_op_threads)
    if not repository.names:
        raise ModelLoadError("no model to serve: give at least one model folder or a repository folder holding one")
    capture = None
    if settings.capture_rate > 0:
        if capture_writer is None and settings.capture_writer:
            capture_writer = load_capture_writer(settings)
        if capture_writer is None:
            if not settings.capture_dir:
                raise ModelLoadError("a capture rate is set but no capture folder or writer")
            capture_writer = FolderCaptureWriter(Path(settings.capture_dir))
        capture = CaptureSampler(capture_writer, settings.capture_rate, settings.capture_batch_rows,
                                 settings.capture_flush_seconds, on_drop=metrics.CAPTURE_DROPPED.inc,
                                 on_written=metrics.CAPTURED.inc)
    service = InferenceService(settings, repository, capture)

    @asynccontextmanager
    async def lifespan(app):
        if capture is not None:
            capture.start()
        loading = None
        if settings.workers > 1:
            # Worker processes share one socket and accept only after startup: loading here means a request can
            # never reach a worker that is still loading.
            await service.load_all()
        else:
            # One process: answer /v2/health/live at once, and /v2/health/ready once the models are in.
            loading = asyncio.get_running_loop().create_task(service.load_all())
        try:
            yield
        finally:
            if loading is not None:
                loading.cancel()
            if capture is not None:
                await run_in_threadpool(capture.close)
            service.executor.shutdown(wait=False)

    app = Starlette(routes=build_routes(service), lifespan=lifespan)
    app.state.service = service
    guarded = Guard(app, token, settings.access_log)
    guarded.service = service
    return guarded


def app_from_environment():
    """Factory used by uvicorn (also in each worker process): settings come from the environment."""
    from orchestrator.serving.server import configure_logging

    settings = ServerSettings.from_environment()
    configure_logging(settings.log_level)
    return build_app(settings)
