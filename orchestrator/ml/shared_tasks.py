"""Tasks on a Dask cluster that share one scattered copy of their data, and survive the loss of every copy.

Scattered data has no lineage: when every worker holding a copy dies, the scheduler cannot compute it again, so it
forgets the key and every task waiting on it, and their futures end "cancelled for reason: already forgotten". A
fit that runs for minutes on a cloud cluster must not fail for that: the data is scattered again (under fresh keys,
never the forgotten ones, which the scheduler would wait on forever) and the calls not yet finished are submitted
again. Results already received are kept.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Sequence

from orchestrator.errors import StageFailed

SCATTERS = 4  # the first scatter and three more after a loss: a cluster losing all its copies more often is failing


def run_sharing(client, shared: Sequence, function: Callable, calls: Sequence[tuple], *, broadcast: bool = True,
                scatters: int = SCATTERS) -> Iterator[tuple[int, Any]]:
    """``function(*shared, *calls[i])`` for every i on the cluster, yielded as ``(i, result)`` as each finishes.

    Args:
        client: a ``distributed.Client``.
        shared: the data every call receives first, scattered once (to every worker, with ``broadcast``).
        function: what runs on the workers.
        calls: the other arguments of each call.
        broadcast: give every worker its own copy, so that one worker dying loses none.
        scatters: how many times the data may be scattered in all.

    Raises:
        StageFailed: every copy of the shared data was lost ``scatters`` times.
        Exception: what a call raised, as the call raised it.
    """
    from distributed import as_completed
    from distributed.client import FutureCancelledError

    remaining = dict(enumerate(calls))
    for _ in range(scatters):
        handles = client.scatter(list(shared), broadcast=broadcast, hash=False)
        futures = {client.submit(function, *handles, *arguments, pure=False): index
                   for index, arguments in remaining.items()}
        try:
            for future in as_completed(futures):
                try:
                    result = future.result()
                except FutureCancelledError:
                    break  # the shared data is gone: the others waiting on it are forgotten too
                index = futures[future]
                del remaining[index]
                yield index, result
        finally:
            client.cancel([*futures, *handles])
        if not remaining:
            return
    raise StageFailed(f"the cluster lost every copy of the shared data {scatters} times; "
                      f"{len(remaining)} of {len(calls)} tasks did not finish")
