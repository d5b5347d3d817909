"""``dataops serve MODEL_REF [MODEL_REF ...]``: serve model folders or registered models over the Open Inference Protocol."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.console import err


def serve(
    model_refs: list[str] = typer.Argument(..., metavar="MODEL_REF...",
                                           help="Model folder paths or registry references: name, name:3, name@production."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; loopback unless you mean to expose the server "
                                                "(then with --tls-cert and --tls-key)."),
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
    tls_cert: Path = typer.Option(None, help="Serve HTTPS with this certificate (PEM, with its chain)."),
    tls_key: Path = typer.Option(None, help="The certificate's private key (PEM)."),
    insecure_http: bool = typer.Option(False, "--insecure-http",
                                       help="Serve plain HTTP on an address other than loopback (tokens and rows "
                                            "travel in the clear)."),
    max_body_bytes: int = typer.Option(16 * 1024 * 1024, min=1, help="Largest accepted request body."),
    access_log: bool = typer.Option(True, help="One JSON line per request on stderr."),
) -> None:
    """Serve ONNX models over the Open Inference Protocol (V2 REST) until interrupted.

    Plain HTTP on loopback by default; HTTPS with --tls-cert and --tls-key. Any other address without TLS is
    refused unless --insecure-http says so.
    """
    from orchestrator.usecases.serve import ServeOptions, serve_models

    options = ServeOptions(
        store=store, host=host, port=port, workers=workers, repository_dir=repository_dir, device=device,
        intra_op_threads=intra_op_threads, max_batch_rows=max_batch_rows, max_wait_ms=max_wait_ms,
        range_policy=range_policy, capture_dir=capture_dir, capture_rate=capture_rate, capture_store=capture_store,
        token_file=token_file, tls_cert=tls_cert, tls_key=tls_key, insecure_http=insecure_http,
        max_body_bytes=max_body_bytes, access_log=access_log,
    )

    def announce(settings) -> None:
        scheme = "https" if settings.tls_cert else "http"
        err.print(f"Serving {len(settings.model_folders)} model folder(s) on "
                  f"{scheme}://{settings.host}:{settings.port} (V2 REST under /v2, metrics at /metrics)")

    serve_models(model_refs, options, on_start=announce)


def register(app: typer.Typer) -> None:
    """Add ``dataops serve`` to the root app."""
    app.command("serve")(serve)
