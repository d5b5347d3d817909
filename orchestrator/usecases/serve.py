"""Serve model folders or registered models over the Open Inference Protocol until interrupted.

The server (``orchestrator.serving``) stands alone and knows nothing of registries or artifact stores: here model
references are resolved through the registry, and a server capturing to an artifact store is given, through its
settings, the name of a writer factory that lives in this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import setting
from orchestrator.errors import ArtifactNotFound, DataopsError
from orchestrator.monitoring.windows import STORE_CAPTURES
from orchestrator.serving.capture import StoreCaptureWriter
from orchestrator.serving.codecs import RANGE_POLICIES
from orchestrator.serving.errors import ServingError
from orchestrator.serving.settings import ServerSettings

# Settings travel as JSON to every worker process, so the factory is named, not passed.
STORE_CAPTURE_WRITER = f"{__name__}:store_capture_writer"


@dataclass(frozen=True)
class ServeOptions:
    """How to serve: the server's settings as a person gives them (paths, an artifact store location)."""

    store: str | None = None
    host: str = ServerSettings.host
    port: int = ServerSettings.port
    workers: int = ServerSettings.workers
    repository_dir: Path | None = None
    device: str = ServerSettings.device
    intra_op_threads: int = ServerSettings.intra_op_threads
    max_batch_rows: int = ServerSettings.max_batch_rows
    max_wait_ms: float = ServerSettings.max_wait_ms
    range_policy: str = ServerSettings.range_policy
    capture_dir: Path | None = None
    capture_rate: float = ServerSettings.capture_rate
    capture_store: str | None = None
    token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    insecure_http: bool = ServerSettings.insecure_http
    max_body_bytes: int = ServerSettings.max_body_bytes
    access_log: bool = ServerSettings.access_log


def resolve_model_folder(ref: str, store_location: str | None) -> Path:
    """A model folder path as is; anything else (``name``, ``name:3``, ``name@production``) through the registry.

    Args:
        ref: A model folder path or a registry reference.
        store_location: The artifact store holding the registry (default: the ``store`` setting).

    Returns:
        The model folder to serve.

    Raises:
        ArtifactNotFound: the path does not exist and the registry cannot resolve the reference.
        DataopsError: the registry is not installed in this build.
    """
    path = Path(ref)
    if path.is_dir():
        return path
    if "/" in ref or ref.startswith("."):
        raise ArtifactNotFound(f"model folder {ref} does not exist")
    try:
        from orchestrator.registry import resolve_model_ref  # the registry is only needed for registry references
    except ImportError as exc:
        raise DataopsError(
            f"{ref!r} is not a model folder, and registry references need orchestrator.registry, "
            f"which this installation does not provide ({exc}); pass the path of a model folder instead"
        ) from exc
    from orchestrator.artifacts.open import open_store

    return Path(resolve_model_ref(open_store(setting("store", store_location)), ref))


def store_capture_writer(settings: ServerSettings) -> StoreCaptureWriter:
    """Capture writer factory for the server: batches go to the artifact store named by ``settings.capture_store``.

    Called inside each server process, by the name ``STORE_CAPTURE_WRITER`` its settings carry.

    Args:
        settings: The server's settings.

    Returns:
        A writer putting each batch under ``captures/`` of the store.
    """
    from orchestrator.artifacts.open import open_store

    return StoreCaptureWriter(open_store(settings.capture_store), STORE_CAPTURES)


def server_settings(model_refs: list[str], options: ServeOptions) -> ServerSettings:
    """The settings a server for ``model_refs`` starts with.

    Args:
        model_refs: Model folder paths or registry references.
        options: How to serve them.

    Returns:
        The server's settings, every model reference resolved to a folder.

    Raises:
        ArtifactNotFound: a model reference resolves to nothing.
        DataopsError: the range policy is unknown, or the registry is needed and not installed.
    """
    folders = [str(resolve_model_folder(ref, options.store)) for ref in model_refs]
    if options.range_policy not in RANGE_POLICIES:
        raise DataopsError(f"--range-policy must be reject or flag, got {options.range_policy!r}")
    return ServerSettings(
        model_folders=folders,
        repository_dir=str(options.repository_dir) if options.repository_dir else None,
        host=options.host,
        port=options.port,
        workers=options.workers,
        device=options.device,
        intra_op_threads=options.intra_op_threads,
        max_batch_rows=options.max_batch_rows,
        max_wait_ms=options.max_wait_ms,
        range_policy=options.range_policy,
        capture_dir=str(options.capture_dir) if options.capture_rate and options.capture_dir else None,
        capture_rate=options.capture_rate,
        capture_store=options.capture_store,
        capture_writer=STORE_CAPTURE_WRITER if options.capture_store else None,
        token_file=str(options.token_file) if options.token_file else None,
        tls_cert=str(options.tls_cert) if options.tls_cert else None,
        tls_key=str(options.tls_key) if options.tls_key else None,
        insecure_http=options.insecure_http,
        max_body_bytes=options.max_body_bytes,
        access_log=options.access_log,
    )


def serve_models(model_refs: list[str], options: ServeOptions,
                 on_start: Callable[[ServerSettings], None] | None = None) -> None:
    """Serve ``model_refs`` until interrupted.

    Args:
        model_refs: Model folder paths or registry references.
        options: How to serve them.
        on_start: Called with the settings once every model folder has been checked, just before serving.

    Raises:
        ArtifactNotFound: a model reference resolves to nothing.
        DataopsError: the server cannot start (a folder without a model card, an unusable token file, plain HTTP
            on an address other hosts reach without ``insecure_http``, unusable TLS files, ...).
    """
    from orchestrator.serving.server import run_server

    settings = server_settings(model_refs, options)
    try:
        run_server(settings, (lambda: on_start(settings)) if on_start is not None else None)
    except ServingError as exc:
        raise DataopsError(str(exc)) from exc
