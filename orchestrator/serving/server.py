"""Start the server with uvicorn (uvloop + httptools), one or several worker processes."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile

from orchestrator.serving.settings import SETTINGS_ENV, ServerSettings
from orchestrator.serving.tls import check_transport, uvicorn_tls_options

APP_FACTORY = "orchestrator.serving.app:app_from_environment"


def configure_logging(level: str) -> None:
    """Server messages go to stderr with a time and level (access lines are JSON, written by AccessLog)."""
    other = logging.StreamHandler(sys.stderr)
    other.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("dataops.serving")
    root.handlers[:] = [other]
    root.setLevel(level.upper())


def run_server(settings: ServerSettings, announce=None) -> None:
    """Serve until interrupted.

    The settings travel to every worker process through an environment variable; with several workers,
    Prometheus metrics are aggregated through a temporary multiprocess folder.

    Raises:
        TransportRefused: plain HTTP on an address other hosts reach without ``insecure_http``, or unusable TLS
            files (checked before any model is loaded).
        ServingError: a model folder, the token file or the capture writer cannot be used.
    """
    check_transport(settings)
    # Build once in this process so a bad folder or token file fails here, with a clear message, not in a worker.
    from orchestrator.serving.app import build_app

    build_app(settings)
    if announce is not None:
        announce()
    os.environ[SETTINGS_ENV] = settings.to_json()
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="dataops-serving-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    configure_logging(settings.log_level)
    try:
        _run_uvicorn(settings)
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _run_uvicorn(settings: ServerSettings) -> None:
    import uvicorn

    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level,
        log_config=None,
        server_header=False,
        **uvicorn_tls_options(settings),
    )
