"""Prometheus metrics. With several worker processes, prometheus-client's multiprocess mode is used
(``PROMETHEUS_MULTIPROC_DIR`` is set by the server runner before the workers import this module)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))

REQUESTS = Counter("dataops_serving_requests_total", "Requests answered, by route, model and HTTP status.",
                   ["route", "model", "status"])
LATENCY = Histogram("dataops_serving_request_seconds", "Time from request to response, by route and model.",
                    ["route", "model"],
                    buckets=(0.0005, 0.001, 0.002, 0.004, 0.008, 0.015, 0.03, 0.06, 0.12, 0.25, 0.5, 1.0, 2.5))
BATCH_ROWS = Histogram("dataops_serving_batch_rows", "Rows scored per onnxruntime call (micro-batches included).",
                       ["model"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384))
IN_FLIGHT = Gauge("dataops_serving_in_flight_requests", "Requests being handled.", multiprocess_mode="livesum")
OUT_OF_RANGE = Counter("dataops_serving_out_of_range_total",
                       "Values outside the training range of the model card, by model and input.", ["model", "input"])
CAPTURED = Counter("dataops_serving_captured_rows_total", "Rows written by the sampled capture.")
CAPTURE_DROPPED = Counter("dataops_serving_capture_dropped_total", "Samples dropped because the capture queue was full.")


def exposition() -> tuple[bytes, str]:
    """The text exposition for ``/metrics`` and its content type."""
    if MULTIPROCESS:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
