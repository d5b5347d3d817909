"""Server-side micro-batching: concurrent requests for one model are scored together in one onnxruntime call.

Requests queue on the event loop; one drain task per model waits at most ``max_wait`` seconds after the first
queued request (or until ``max_batch_rows`` rows are waiting), concatenates the inputs, runs the model on a worker
thread (onnxruntime releases the GIL, so the loop keeps parsing requests meanwhile) and hands each request its rows.
With ``max_batch_rows <= 1`` batching is off and small requests are scored inline on the loop, which is the fastest
path when the model is cheap.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from orchestrator.serving.errors import BadRequest
from orchestrator.serving.model import LoadedModel

INLINE_MAX_ROWS = 16  # above this a request is never scored on the event loop: it would stall other requests


@dataclass
class _Pending:
    feeds: dict[str, np.ndarray]
    rows: int
    future: asyncio.Future


def run_model(model: LoadedModel, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Score inputs, turning onnxruntime's refusal of an input into a client error rather than a crash."""
    try:
        return model.run(feeds)
    except Exception as exc:  # onnxruntime raises untyped errors (InvalidArgument, Fail) for inputs it refuses
        if type(exc).__name__ in ("InvalidArgument", "InvalidGraph", "Fail") or "INVALID_ARGUMENT" in str(exc):
            raise BadRequest(f"model {model.name!r} refused the input: {exc}") from exc
        raise


class MicroBatcher:
    """Collects concurrent requests for one model and scores them together."""

    def __init__(self, model: LoadedModel, executor: Executor, max_batch_rows: int, max_wait: float, observe_batch=None):
        self.model = model
        self.executor = executor
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait
        self.observe_batch = observe_batch or (lambda rows: None)
        self._queue: deque[_Pending] = deque()
        self._draining = False

    async def infer(self, feeds: dict[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
        """Score one request's rows, possibly together with other requests'."""
        if self.max_batch_rows <= 1 or rows >= self.max_batch_rows:
            self.observe_batch(rows)
            if rows <= INLINE_MAX_ROWS and self.max_batch_rows <= 1:
                return run_model(self.model, feeds)
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self.executor, run_model, self.model, feeds)
        loop = asyncio.get_running_loop()
        pending = _Pending(feeds, rows, loop.create_future())
        self._queue.append(pending)
        if not self._draining:
            self._draining = True
            loop.create_task(self._drain())
        return await pending.future

    def _take_batch(self) -> list[_Pending]:
        batch, total = [], 0
        while self._queue and (not batch or total + self._queue[0].rows <= self.max_batch_rows):
            item = self._queue.popleft()
            batch.append(item)
            total += item.rows
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                if self.max_wait > 0 and sum(p.rows for p in self._queue) < self.max_batch_rows:
                    await asyncio.sleep(self.max_wait)
                batch = self._take_batch()
                await self._score(loop, batch)
        finally:
            self._draining = False

    async def _score(self, loop, batch: list[_Pending]) -> None:
        rows = sum(p.rows for p in batch)
        self.observe_batch(rows)
        if len(batch) == 1:
            feeds = batch[0].feeds
        else:
            feeds = {name: np.concatenate([p.feeds[name] for p in batch]) for name in batch[0].feeds}
        try:
            results = await loop.run_in_executor(self.executor, run_model, self.model, feeds)
        except BadRequest as exc:
            if len(batch) == 1:
                _fail(batch[0], exc)
                return
            # One request spoilt the batch: score each alone so only the guilty one fails.
            for item in batch:
                try:
                    _resolve(item, await loop.run_in_executor(self.executor, run_model, self.model, item.feeds))
                except Exception as exc:  # handed to the waiting request, which answers it
                    _fail(item, exc)
            return
        except Exception as exc:  # handed to every waiting request; the app answers 500 and logs it
            for item in batch:
                _fail(item, exc)
            return
        start = 0
        for item in batch:
            end = start + item.rows
            _resolve(item, results if len(batch) == 1 else {k: v[start:end] for k, v in results.items()})
            start = end


def _resolve(item: _Pending, results) -> None:
    if not item.future.done():
        item.future.set_result(results)


def _fail(item: _Pending, exc: BaseException) -> None:
    if not item.future.done():
        item.future.set_exception(exc)
