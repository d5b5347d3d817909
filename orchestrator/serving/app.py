"""The ASGI application: Open Inference Protocol (V2) REST routes, a records route for people, the repository
extension, health and metrics. One object answers every request: it checks the bearer token, routes, answers, and
counts and logs what it did.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from orchestrator import __version__
from orchestrator.serving import metrics, routing
from orchestrator.serving.accesslog import AccessLog
from orchestrator.serving.asgi import Reply, Request, run_lifespan
from orchestrator.serving.batching import MicroBatcher
from orchestrator.serving.capture import (
    CaptureSampler, CaptureWriter, FolderCaptureWriter, SignedUrlCaptureWriter,
)
from orchestrator.serving.codecs import (RANGE_POLICIES, check_values, decode_infer_request, decode_records,
                                         encode_infer_response, encode_predictions)
from orchestrator.serving.errors import ModelLoadError, ModelNotFound, ServingError
from orchestrator.serving.model import LoadedModel
from orchestrator.serving.repository import ModelRepository
from orchestrator.serving.settings import ServerSettings, read_token

log = logging.getLogger("dataops.serving")

SERVER_NAME = "dataops-serving"
EXTENSIONS = ["binary_tensor_data", "model_repository", "predict_records"]
_BINARY = b"application/octet-stream"
_UNAUTHORIZED = Reply(401, orjson.dumps({"error": "missing or invalid bearer token"}),
                      headers=((b"www-authenticate", b"Bearer"),))


def _json(data, status: int = 200) -> Reply:
    return Reply(status, orjson.dumps(data))


def _error(status: int, message: str, headers: tuple = ()) -> Reply:
    return Reply(status, orjson.dumps({"error": message}), headers=headers)


async def _in_thread(function, *args):
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


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
            self.capture.offer(model.name, model.version, decoded.request_id, model.by_column(decoded.feeds), results,
                               model.by_column(flags))
        return results

    async def load_all(self) -> None:
        for name in self.repository.names:
            try:
                await _in_thread(self.repository.load, name)
            except ServingError as exc:
                log.error("model %s could not be loaded: %s", name, exc)


class InferenceApp:
    """The ASGI application. Every HTTP request passes through ``__call__``, which checks the bearer token (health
    routes stay open for probes), keeps the in-flight gauge, the request counter and the latency histogram, and
    writes one structured access-log line. Headers are never logged."""

    def __init__(self, service: InferenceService, token: str | None, log_requests: bool):
        self.service = service
        self.repository = service.repository
        self.limit = service.settings.max_body_bytes
        self.expected = f"Bearer {token}".encode() if token else None
        self.access_log = AccessLog() if log_requests else None
        self._series: dict[tuple, tuple] = {}  # labelled metric children, looked up once per label set
        self._loading: asyncio.Task | None = None
        self.handlers = {
            "live": self.live, "ready": self.ready, "server_metadata": self.server_metadata,
            "model_metadata": self.model_metadata, "model_ready": self.model_ready,
            "infer": self.infer, "predict": self.predict,
            "repository_index": self.repository_index, "repository_load": self.repository_load,
            "repository_unload": self.repository_unload, "metrics": self.metrics,
        }

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await run_lifespan(receive, send, self.startup, self.shutdown)
            return
        started = time.perf_counter()
        metrics.IN_FLIGHT.inc()
        request = Request(scope, receive)
        reply = None
        try:
            reply = await self.answer(request)
            await reply.send(send)
        finally:
            metrics.IN_FLIGHT.dec()
            self._account(request, reply.status if reply is not None else 0, time.perf_counter() - started)

    async def answer(self, request: Request) -> Reply:
        """Route, authorize and answer one request; a ServingError becomes its status, anything else a logged 500."""
        scope = request.scope
        found = routing.match(scope["path"])
        if found is None:
            return _error(404, f"no route {scope['path'][:200]!r}: the V2 API lives under /v2")
        route, method, params = found
        request.route, request.params = route, params
        if self.expected is not None and route not in ("live", "ready") and not self._authorized(request):
            request.route = "unauthorized"
            return _UNAUTHORIZED
        if scope["method"] != method:
            return _error(405, f"{scope['method']} is not allowed on {scope['path'][:200]!r}: use {method}",
                          ((b"allow", method.encode()),))
        request.model = params.get("name", "")
        try:
            return await self.handlers[route](request)
        except ServingError as exc:
            if isinstance(exc, ModelNotFound):
                # Metrics are labelled with served models only: names made up by clients must not add series.
                request.model = ""
            return _error(exc.status, str(exc))
        except Exception:  # the one place an unexpected failure becomes a 500 (and a logged traceback)
            log.exception("unexpected failure on %s %s", scope["method"], scope["path"])
            return _error(500, "internal error (logged on the server)")

    def _authorized(self, request: Request) -> bool:
        value = request.header(b"authorization")
        return value is not None and hmac.compare_digest(value, self.expected)

    def _account(self, request: Request, status: int, elapsed: float) -> None:
        key = (request.route, request.model, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = (metrics.REQUESTS.labels(request.route, request.model, str(status)),
                                          metrics.LATENCY.labels(request.route, request.model))
        series[0].inc()
        series[1].observe(elapsed)
        if self.access_log is not None:
            scope = request.scope
            client = scope.get("client")
            self.access_log.write(orjson.dumps({
                "ts": time.time(), "client": f"{client[0]}:{client[1]}" if client else None,
                "method": scope["method"], "path": scope["path"], "status": status,
                "ms": round(elapsed * 1000, 3), "route": request.route, "model": request.model,
            }).decode())

    # ------------------------------------------------------------------ lifespan

    async def startup(self) -> None:
        service = self.service
        if service.capture is not None:
            service.capture.start()
        if service.settings.workers > 1:
            # Worker processes share one socket and accept only after startup: loading here means a request can
            # never reach a worker that is still loading.
            await service.load_all()
        else:
            # One process: answer /v2/health/live at once, and /v2/health/ready once the models are in.
            self._loading = asyncio.get_running_loop().create_task(service.load_all())

    async def shutdown(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
        if self.service.capture is not None:
            await _in_thread(self.service.capture.close)
        self.service.executor.shutdown(wait=False)
        if self.access_log is not None:
            self.access_log.flush()

    # ------------------------------------------------------------------ routes

    async def live(self, request: Request) -> Reply:
        return _json({"live": True})

    async def ready(self, request: Request) -> Reply:
        ok = self.repository.all_ready()
        return _json({"ready": ok}, 200 if ok else 503)

    async def server_metadata(self, request: Request) -> Reply:
        return _json({"name": SERVER_NAME, "version": __version__, "extensions": EXTENSIONS})

    async def model_metadata(self, request: Request) -> Reply:
        return _json(self.repository.get(request.params["name"], request.params.get("version")).metadata())

    async def model_ready(self, request: Request) -> Reply:
        name, version = request.params["name"], request.params.get("version")
        if name not in self.repository.names:
            raise ModelNotFound(f"unknown model {name!r}: served models are {self.repository.names}")
        ok = self.repository.is_ready(name, version)
        return _json({"name": name, "ready": ok}, 200 if ok else 503)

    async def infer(self, request: Request) -> Reply:
        model = self.repository.get(request.params["name"], request.params.get("version"))
        body = await request.body(self.limit)
        header_length = request.header(b"inference-header-content-length")
        decoded = decode_infer_request(body, header_length.decode("latin-1") if header_length is not None else None,
                                       model)
        results = await self.service.score(model, decoded)
        payload, json_length = encode_infer_response(model, decoded, results)
        if json_length is None:
            return Reply(200, payload)
        return Reply(200, payload, _BINARY, ((b"inference-header-content-length", b"%d" % json_length),))

    async def predict(self, request: Request) -> Reply:
        model = self.repository.get(request.params["name"], request.params.get("version"))
        decoded = decode_records(await request.body(self.limit), model)
        results = await self.service.score(model, decoded)
        return Reply(200, encode_predictions(model, decoded, results))

    async def repository_index(self, request: Request) -> Reply:
        await request.body(self.limit)
        return _json(await _in_thread(self.repository.index))

    async def repository_load(self, request: Request) -> Reply:
        await request.body(self.limit)
        name = request.params["name"]
        await _in_thread(self.repository.load, name)
        self.service.forget(name)
        return _json({})

    async def repository_unload(self, request: Request) -> Reply:
        await request.body(self.limit)
        name = request.params["name"]
        self.repository.unload(name)
        self.service.forget(name)
        return _json({})

    async def metrics(self, request: Request) -> Reply:
        body, content_type = metrics.exposition()
        return Reply(200, body, content_type.encode())


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


def build_app(settings: ServerSettings, capture_writer: CaptureWriter | None = None) -> InferenceApp:
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
        if capture_writer is None and settings.capture_url_file:
            try:
                capture_writer = SignedUrlCaptureWriter(Path(settings.capture_url_file))
            except (OSError, ValueError) as exc:
                raise ModelLoadError(f"capture URL file {settings.capture_url_file}: {exc}") from None
        if capture_writer is None:
            if not settings.capture_dir:
                raise ModelLoadError("a capture rate is set but no capture folder or writer")
            capture_writer = FolderCaptureWriter(Path(settings.capture_dir))
        capture = CaptureSampler(capture_writer, settings.capture_rate, settings.capture_batch_rows,
                                 settings.capture_flush_seconds, on_drop=metrics.CAPTURE_DROPPED.inc,
                                 on_written=metrics.CAPTURED.inc)
    return InferenceApp(InferenceService(settings, repository, capture), token, settings.access_log)


def app_from_environment() -> InferenceApp:
    """Factory used by uvicorn (also in each worker process): settings come from the environment."""
    from orchestrator.serving.server import configure_logging

    settings = ServerSettings.from_environment()
    configure_logging(settings.log_level)
    return build_app(settings)
