"""Server-side micro-batching: concurrent requests for one model are scored together in one onnxruntime call.

Requests queue while a batch is being scored and go together in the next one; when the model is idle, a request
waits at most ``max_wait`` seconds for company (0: only for requests that arrived in the same turn of the loop),
and never once ``max_batch_rows`` rows are waiting. Batches of up to ``INLINE_MAX_ROWS`` rows are scored on the
event loop; bigger ones on a worker thread, where onnxruntime computes without the GIL while the loop goes on.
With ``max_batch_rows <= 1`` batching is off and small requests are scored inline on the loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Executor

import numpy as np

from orchestrator.serving.errors import BadRequest
from orchestrator.serving.model import LoadedModel

INLINE_MAX_ROWS = 16  # above this a request is never scored on the event loop: it would stall other requests

# One queued request: its feeds, its row count and the future its handler awaits.
_Pending = tuple[dict[str, np.ndarray], int, asyncio.Future]


def run_model(model: LoadedModel, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Score inputs, turning onnxruntime's refusal of an input into a client error rather than a crash."""
    try:
        return model.run(feeds)
    except Exception as exc:  # onnxruntime raises untyped errors (InvalidArgument, Fail) for inputs it refuses
        if type(exc).__name__ in ("InvalidArgument", "InvalidGraph", "Fail") or "INVALID_ARGUMENT" in str(exc):
            raise BadRequest(f"model {model.name!r} refused the input: {exc}") from exc
        raise


def score_batch(model: LoadedModel, batch: list[_Pending]) -> list:
    """Score a batch: each request's results, or the exception to answer that request with. Never raises."""
    if len(batch) == 1:
        feeds = batch[0][0]
    else:
        feeds = {name: np.concatenate([item[0][name] for item in batch]) for name in batch[0][0]}
    try:
        results = run_model(model, feeds)
    except BadRequest as exc:
        if len(batch) == 1:
            return [exc]
        # One request spoilt the batch: score each alone so that only the guilty one fails.
        outcomes = []
        for item in batch:
            try:
                outcomes.append(run_model(model, item[0]))
            except Exception as alone:  # handed to the waiting request, which answers it
                outcomes.append(alone)
        return outcomes
    except Exception as exc:  # handed to every waiting request; the app answers it (a 500 is logged)
        return [exc] * len(batch)
    if len(batch) == 1:
        return [results]
    outcomes, start = [], 0
    for item in batch:
        end = start + item[1]
        outcomes.append({name: array[start:end] for name, array in results.items()})
        start = end
    return outcomes


class MicroBatcher:
    """Collects concurrent requests for one model and scores them together."""

    def __init__(self, model: LoadedModel, executor: Executor, max_batch_rows: int, max_wait: float, observe_batch=None):
        self.model = model
        self.executor = executor
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait
        self.observe_batch = observe_batch or (lambda rows: None)
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._busy = False  # a batch is being scored, or one is about to start

    async def infer(self, feeds: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        """Score one request's rows, possibly together with other requests'."""
        loop = asyncio.get_running_loop()
        if self.max_batch_rows <= 1 or rows >= self.max_batch_rows:
            self.observe_batch(rows)
            if rows <= INLINE_MAX_ROWS and self.max_batch_rows <= 1:
                return run_model(self.model, feeds)
            return await loop.run_in_executor(self.executor, run_model, self.model, feeds)
        future = loop.create_future()
        self._queue.append((feeds, rows, future))
        self._queued_rows += rows
        if not self._busy:
            self._busy = True
            if self.max_wait > 0 and self._queued_rows < self.max_batch_rows:
                loop.call_later(self.max_wait, self._start, loop)
            else:
                loop.call_soon(self._start, loop)  # after the requests already read in this turn of the loop
        return await future

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, rows = [], 0
        queue = self._queue
        while queue and (not batch or rows + queue[0][1] <= self.max_batch_rows):
            item = queue.popleft()
            batch.append(item)
            rows += item[1]
        self._queued_rows -= rows
        self.observe_batch(rows)
        if rows <= INLINE_MAX_ROWS:
            # Small batches are scored right here: handing them to a thread costs more than it saves, since the
            # thread must win the GIL back from a busy loop twice per batch.
            self._deliver(batch, score_batch(self.model, batch))
            self._next(loop)
            return
        done = self.executor.submit(score_batch, self.model, batch)
        done.add_done_callback(lambda finished: loop.call_soon_threadsafe(self._finish, loop, batch, finished))

    def _finish(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending], finished) -> None:
        self._deliver(batch, finished.result())
        self._next(loop)

    def _next(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._queue:  # what queued while a batch was scored goes next, without waiting: it has waited already
            loop.call_soon(self._start, loop)
        else:
            self._busy = False

    @staticmethod
    def _deliver(batch: list[_Pending], outcomes: list) -> None:
        for (_, _, future), outcome in zip(batch, outcomes):
            if future.done():  # the client went away
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
