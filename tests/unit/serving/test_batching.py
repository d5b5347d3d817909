import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import orjson
import pytest
from support.tiny_models import v2_inputs, valid_row

from orchestrator.serving.batching import MicroBatcher
from orchestrator.serving.codecs import decode_infer_request
from orchestrator.serving.errors import BadRequest


def feeds_for(model, rows):
    return decode_infer_request(orjson.dumps({"inputs": v2_inputs(rows)}), None, model).feeds


def rows_of(i):
    return [valid_row(dep_hour=float(5 + i % 18), distance=100.0 + 10 * i)]


async def submit_concurrently(batcher, model, count):
    return await asyncio.gather(*(batcher.infer(feeds_for(model, rows_of(i)), 1) for i in range(count)))


def test_concurrent_single_row_requests_are_scored_together_and_each_gets_its_own_rows(model):
    batches = []
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(model, executor, max_batch_rows=8, max_wait=0.005, observe_batch=batches.append)
        results = asyncio.run(submit_concurrently(batcher, model, 20))
    assert sum(batches) == 20 and max(batches) == 8 and len(batches) < 20
    for i, result in enumerate(results):
        alone = model.run(feeds_for(model, rows_of(i)))
        assert result["label"].tolist() == alone["label"].tolist()
        np.testing.assert_allclose(result["probabilities"], alone["probabilities"], atol=1e-6)


def test_batching_off_scores_each_request_alone(model):
    batches = []
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(model, executor, max_batch_rows=1, max_wait=0.005, observe_batch=batches.append)
        asyncio.run(submit_concurrently(batcher, model, 5))
    assert batches == [1, 1, 1, 1, 1]


def test_a_request_the_model_refuses_fails_alone_not_its_batch(model):
    class PickyModel:
        name = model.name

        def run(self, feeds):
            if (feeds["distance"] == 666.0).any():
                raise BadRequest("distance 666 refused")
            return model.run(feeds)

    async def scenario(batcher):
        good = [batcher.infer(feeds_for(model, rows_of(i)), 1) for i in range(3)]
        bad = batcher.infer(feeds_for(model, [valid_row(distance=666.0)]), 1)
        return await asyncio.gather(*good, bad, return_exceptions=True)

    with ThreadPoolExecutor(1) as executor:
        outcomes = asyncio.run(scenario(MicroBatcher(PickyModel(), executor, 8, 0.005)))
    assert [type(o).__name__ for o in outcomes] == ["dict", "dict", "dict", "BadRequest"]


@pytest.mark.parametrize("max_wait", [0.0, 0.002])
def test_a_large_request_is_never_split(model, max_wait):
    batches = []
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(model, executor, 4, max_wait, batches.append)
        result = asyncio.run(batcher.infer(feeds_for(model, [valid_row()] * 10), 10))
    assert batches == [10] and result["label"].shape == (10,)


def test_without_a_wait_requests_arriving_together_are_still_scored_together(model):
    batches = []
    with ThreadPoolExecutor(1) as executor:
        batcher = MicroBatcher(model, executor, max_batch_rows=32, max_wait=0.0, observe_batch=batches.append)
        asyncio.run(submit_concurrently(batcher, model, 12))
    assert batches == [12]


def test_requests_queued_while_a_batch_is_scored_form_the_next_batch(model):
    batches = []

    async def scenario(batcher):
        first = [asyncio.ensure_future(batcher.infer(feeds_for(model, [valid_row()] * 20), 20))]
        await asyncio.sleep(0)  # the first batch (20 rows, on the worker thread) is under way
        later = [batcher.infer(feeds_for(model, rows_of(i)), 1) for i in range(5)]
        return await asyncio.gather(*first, *later)

    with ThreadPoolExecutor(1) as executor:
        results = asyncio.run(scenario(MicroBatcher(model, executor, 32, 0.0, batches.append)))
    assert batches == [20, 5] and [r["label"].shape for r in results] == [(20,)] + [(1,)] * 5


def test_small_batches_are_scored_on_the_loop_and_large_ones_on_a_worker_thread(model):
    import threading

    class RecordingModel:
        name = model.name
        threads: list = []

        def run(self, feeds):
            self.threads.append((len(next(iter(feeds.values()))), threading.current_thread().name))
            return model.run(feeds)

    recording = RecordingModel()
    with ThreadPoolExecutor(1, thread_name_prefix="scoring") as executor:
        batcher = MicroBatcher(recording, executor, 64, 0.0)
        asyncio.run(submit_concurrently(batcher, model, 4))
        asyncio.run(submit_concurrently(batcher, model, 40))
    assert recording.threads == [(4, threading.main_thread().name), (40, "scoring_0")]
