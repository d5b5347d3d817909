"""onnxruntime sessions for batch scoring: one per model in each process, and the share of the cores a call may use.

Tree ensembles score fastest on this path when each core runs its own slice of rows through a single-threaded
session (onnxruntime releases the GIL while it runs): on the forest and the gradient-boosting model of
``bench/onnx_predict.py`` that beat one session with an intra-op thread per core. So every session runs
sequentially on one thread, and parallelism comes from slices: a call scoring alone in a process cuts its rows into one slice
per core it may use; calls running side by side (Dask's threads, one partition each) share the cores between them
and, once there is one call per core, each scores its rows in one piece.

A process's cores are those it may run on (its CPU affinity); inside a Dask worker, the worker's own threads
(a worker given 1 thread of a 16-core host uses 1 core, as the scheduler expects).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

# Below this many rows a slice costs more in thread hand-off than it saves (a 100-tree forest scores about
# 150,000 rows/s per core: 16,384 rows are about 0.1 s of work).
MIN_SLICE_ROWS = 16_384

_sessions: dict[str, object] = {}
_sessions_lock = threading.Lock()
_active_calls = 0
_active_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def session_options():
    """The options of every scoring session: one intra-op thread, sequential execution, all graph optimisations."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def session_for(sha256: str, model_bytes: bytes):
    """This process's session for a model, built on first use.

    Args:
        sha256: the model file's sha256 (from the model card): the cache key.
        model_bytes: the ``model.onnx`` bytes, read only when the session is built.

    Returns:
        An ``onnxruntime.InferenceSession``; it is safe to run from several threads at once.
    """
    session = _sessions.get(sha256)
    if session is None:
        with _sessions_lock:
            session = _sessions.get(sha256)
            if session is None:
                import onnxruntime as ort

                session = ort.InferenceSession(model_bytes, session_options(), providers=["CPUExecutionProvider"])
                _sessions[sha256] = session
    return session


def cached_models() -> list[str]:
    """The sha256 of every model this process holds a session for."""
    return list(_sessions)


def forget_sessions() -> None:
    """Drop every cached session (they are rebuilt on next use)."""
    with _sessions_lock:
        _sessions.clear()


def _host_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def process_cores() -> int:
    """The cores scoring may use in this process: a Dask worker's threads, else the CPUs it may run on."""
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except (ImportError, ValueError, AttributeError):
        return _host_cpus()


@contextmanager
def scoring_call() -> Iterator[int]:
    """Count one scoring call for as long as it runs; yields the cores it may use (its share of the process's)."""
    global _active_calls
    with _active_lock:
        _active_calls += 1
        running = _active_calls
    try:
        yield max(1, process_cores() // running)
    finally:
        with _active_lock:
            _active_calls -= 1


def _slices(rows: int, cores: int) -> list[slice]:
    count = max(1, min(cores, rows // MIN_SLICE_ROWS))
    bounds = np.linspace(0, rows, count + 1).astype(int)
    return [slice(start, stop) for start, stop in itertools.pairwise(bounds)]


def _slice_pool() -> ThreadPoolExecutor:
    """One pool per process, as wide as the CPUs it may run on: slices never outnumber a call's cores."""
    global _pool, _pool_pid
    with _pool_lock:
        # A forked child inherits the pool object but none of its threads: it makes its own.
        if _pool is None or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=_host_cpus(), thread_name_prefix="onnx-slice")
            _pool_pid = os.getpid()
        return _pool


def run_in_slices(session, feeds: dict[str, np.ndarray], rows: int, cores: int) -> list[np.ndarray]:
    """Run ``session`` on ``feeds`` cut into row slices, one per core, and join the outputs in row order.

    Args:
        session: an onnxruntime session.
        feeds: input name -> array with ``rows`` rows (slices of C-contiguous arrays are views, not copies).
        rows: the number of rows of every feed.
        cores: the cores this call may use.

    Returns:
        The session's outputs over all rows, as one ``run`` on the whole feeds would return them.
    """
    parts = _slices(rows, cores)
    if len(parts) == 1:
        return session.run(None, feeds)

    def run(part: slice) -> list[np.ndarray]:
        return session.run(None, {name: value[part] for name, value in feeds.items()})

    results = list(_slice_pool().map(run, parts))
    return [np.concatenate([result[i] for result in results]) for i in range(len(results[0]))]
