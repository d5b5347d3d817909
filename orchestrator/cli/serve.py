"""``dataops serve MODEL_REF [MODEL_REF ...]``: serve model folders or registered models over the Open Inference Protocol."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.console import err
from orchestrator.config import setting
from orchestrator.errors import ArtifactNotFound, DataopsError


def resolve_ref(ref: str, store_location: str | None) -> Path:
    """A model folder path as is; anything else (``name``, ``name:3``, ``name@production``) through the registry.

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


def store_capture_writer(settings):
    """Capture writer factory for the server: batches go to the artifact store named by ``settings.capture_store``.

    Called inside each server process (the server package itself knows nothing of artifact stores).
    """
    from orchestrator.artifacts.open import open_store
    from orchestrator.serving.capture import StoreCaptureWriter

    return StoreCaptureWriter(open_store(settings.capture_store), "captures")


def serve(
    model_refs: list[str] = typer.Argument(..., metavar="MODEL_REF...",
                                           help="Model folder paths or registry references: name, name:3, name@production."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; loopback unless you mean to expose the server."),
    port: int = typer.Option(8080, help="TCP port."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
    store: str = typer.Option(None, help="Artifact store holding the registry (default: the 'store' setting)."),
    repository_dir: Path = typer.Option(None, help="Folder of model folders loadable through the repository API."),
    device: str = typer.Option("cpu", help="cpu, cuda (fails if absent) or auto."),
    intra_op_threads: int = typer.Option(1, min=0, help="onnxruntime threads per model call (0: onnxruntime decides)."),
    max_batch_rows: int = typer.Option(32, min=1, help="Micro-batching: rows scored together at most; 1 turns it off."),
    max_wait_ms: float = typer.Option(0.0, min=0, help="Micro-batching: longest wait for more requests when the model is idle (0: none)."),
    range_policy: str = typer.Option("reject", help="Values outside the card's training ranges: reject or flag."),
    capture_dir: Path = typer.Option(Path(".dataops/captures"), help="Folder receiving sampled inputs/outputs."),
    capture_rate: float = typer.Option(0.01, min=0.0, max=1.0, help="Share of requests captured (0 disables)."),
    capture_store: str = typer.Option(None, help="Write captures to this artifact store (path, file:// or swift://) "
                                                 "under captures/ instead of --capture-dir."),
    token_file: Path = typer.Option(None, help="Bearer token file; else DATAOPS_SERVE_TOKEN; neither: no auth."),
    max_body_bytes: int = typer.Option(16 * 1024 * 1024, min=1, help="Largest accepted request body."),
    access_log: bool = typer.Option(True, help="One JSON line per request on stderr."),
) -> None:
    """Serve ONNX models over the Open Inference Protocol (V2 REST) until interrupted."""
    from orchestrator.serving.errors import ServingError
    from orchestrator.serving.server import run_server
    from orchestrator.serving.settings import ServerSettings

    folders = [str(resolve_ref(ref, store)) for ref in model_refs]
    settings = ServerSettings(
        model_folders=folders, repository_dir=str(repository_dir) if repository_dir else None, host=host, port=port,
        workers=workers, device=device, intra_op_threads=intra_op_threads, max_batch_rows=max_batch_rows,
        max_wait_ms=max_wait_ms, range_policy=range_policy, capture_dir=str(capture_dir) if capture_rate else None,
        capture_rate=capture_rate, capture_store=capture_store,
        capture_writer="orchestrator.cli.serve:store_capture_writer" if capture_store else None, token_file=str(token_file) if token_file else None, max_body_bytes=max_body_bytes,
        access_log=access_log,
    )
    if range_policy not in ("reject", "flag"):
        raise DataopsError(f"--range-policy must be reject or flag, got {range_policy!r}")
    def announce() -> None:
        err.print(f"Serving {len(folders)} model folder(s) on http://{host}:{port} (V2 REST under /v2, metrics at /metrics)")

    try:
        run_server(settings, announce)
    except ServingError as exc:
        raise DataopsError(str(exc)) from exc


def register(app: typer.Typer) -> None:
    """Add ``dataops serve`` to the root app."""
    app.command("serve")(serve)
