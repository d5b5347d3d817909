"""Train / validation / test / serve isolation, enforced rather than encouraged.

Two guarantees:

* after the split, no entity key and no identical row sits in two partitions (``disjoint_parts``, computed with the
  split's writes, then ``disjoint_verdict``; ``check_disjoint`` for rows held in memory);
* a stage is handed a ``PartitionView`` that yields only the partitions the stage is allowed to read; asking for any
  other raises, whatever the stage's code does, and every read is recorded with the partition's fingerprint.

What a stage may read is its kind's declaration (``Reads.partitions`` in ``orchestrator.pipeline.kinds``: training
never sees test or serve rows, evaluation sees only test rows); the graph refuses a stage that would read a split's
whole output instead.
"""

from __future__ import annotations

from typing import Callable

import dask.dataframe as dd
import numpy as np
import pandas as pd

from orchestrator.errors import IsolationViolation
from orchestrator.pipeline.spec import PARTITIONS

PARTITION = "_partition"


def row_hashes(frame: pd.DataFrame, key_columns: list[str]) -> pd.DataFrame:
    """Per row: its partition (a categorical of PARTITIONS), a hash of its entity key and a hash of all its values."""
    data = frame.drop(columns=[PARTITION])
    return pd.DataFrame(
        {
            PARTITION: pd.Categorical(frame[PARTITION], categories=list(PARTITIONS)),
            "key_hash": pd.util.hash_pandas_object(data[key_columns], index=False).to_numpy(),
            "row_hash": pd.util.hash_pandas_object(data, index=False).to_numpy(),
        },
        index=frame.index,
    )


def _fingerprint(rows: int, hash_sum: int) -> str:
    # Order-independent: the same rows in any partitioning give the same fingerprint.
    return f"{rows}-{hash_sum % 2**64:016x}"


def _partition_codes(hashes: pd.DataFrame) -> np.ndarray:
    """Each row's split partition as its index in PARTITIONS (-1 for none)."""
    return pd.Categorical(hashes[PARTITION], categories=list(PARTITIONS)).codes


def partition_totals(hashes: pd.DataFrame) -> pd.DataFrame:
    """Per split partition, of these rows: how many, and the sum of their row hashes (Python ints: they add up
    exactly across Dask partitions, modulo 2**64 only at the end)."""
    codes = _partition_codes(hashes)
    row_hash = hashes["row_hash"].to_numpy()
    return pd.DataFrame({
        "rows": [int((codes == index).sum()) for index in range(len(PARTITIONS))],
        "hash_sum": np.array([int(row_hash[codes == index].sum(dtype=np.uint64)) for index in range(len(PARTITIONS))],
                             dtype=object),
    }, index=list(PARTITIONS))


def shared_values(pairs: pd.DataFrame) -> pd.DataFrame:
    """How many hash values of ``pairs`` (columns ``code``, the split partition, and ``value``) sit in more than one
    split partition, and which partitions they touch (a bit per partition), as one row.

    A plain sort of the uint64 hashes (vectorised, the cheapest global operation here) finds the repeated values;
    usually there are none. Only rows carrying a repeated value are then grouped to see whether their partitions
    differ: equal values side by side span two partitions exactly when two neighbours carry different codes.
    """
    codes, values = pairs["code"].to_numpy(), pairs["value"].to_numpy()
    ordered = np.sort(values)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    count, touched = 0, 0
    if len(repeated):
        candidates = np.isin(values, repeated)
        values, codes = values[candidates], codes[candidates]
        order = np.argsort(values, kind="stable")
        ordered, parts = values[order], codes[order]
        clash = (ordered[1:] == ordered[:-1]) & (parts[1:] != parts[:-1])
        if clash.any():
            count = len(np.unique(ordered[1:][clash]))
            for code in set(parts[1:][clash]) | set(parts[:-1][clash]):
                touched |= 1 << int(code)
    return pd.DataFrame({"count": [count], "touched": [touched]})


def _pairs(hashes: pd.DataFrame, column: str) -> pd.DataFrame:
    return pd.DataFrame({"code": _partition_codes(hashes), "value": hashes[column].to_numpy()}, index=hashes.index)


_PAIRS_META = pd.DataFrame({"code": np.array([], dtype=np.int8), "value": np.array([], dtype=np.uint64)})
_TOTALS_META = pd.DataFrame({"rows": pd.Series([], dtype="int64"), "hash_sum": pd.Series([], dtype=object)})
_SHARED_META = pd.DataFrame({"count": pd.Series([], dtype="int64"), "touched": pd.Series([], dtype="int64")})
CHECKED = ("key_hash", "row_hash")


def disjoint_parts(hashes: dd.DataFrame) -> tuple[dd.DataFrame, ...]:
    """The isolation check, lazily and in bounded memory: per-partition totals, then for the key hashes and the row
    hashes, a shuffle by hash value (every copy of a value meets in one bucket) and the shared values of each
    bucket. Computed with the split's writes, in the same pass; :func:`disjoint_verdict` reads the results."""
    totals = hashes.map_partitions(partition_totals, meta=_TOTALS_META)
    buckets = max(hashes.npartitions, 1)
    # The task-based shuffle keeps its pieces as ordinary results, spilled like any other or kept in memory when
    # the worker's disk is full; the peer-to-peer one writes its buffers there and fails the run instead.
    shared = [hashes.map_partitions(_pairs, column, meta=_PAIRS_META)
              .shuffle(on="value", npartitions=buckets, shuffle_method="tasks")
              .map_partitions(shared_values, meta=_SHARED_META) for column in CHECKED]
    return totals, *shared


def disjoint_verdict(totals: pd.DataFrame, shared: list[pd.DataFrame], key_columns: list[str]) -> dict[str, dict]:
    """Rows and fingerprint per partition from the computed :func:`disjoint_parts`.

    Raises:
        IsolationViolation: naming the partitions that overlap and how many keys or rows they share.
    """
    by_partition = totals.groupby(level=0)
    rows = by_partition["rows"].sum()
    sums = by_partition["hash_sum"].agg(lambda values: sum(int(value) for value in values))
    summary = {}
    for name in PARTITIONS:
        count = int(rows.get(name, 0))
        summary[name] = {"rows": count, "fingerprint": _fingerprint(count, int(sums.get(name, 0)))}
    for column, found in zip(CHECKED, shared):
        count, touched = int(found["count"].sum()), 0
        for bits in found["touched"]:
            touched |= int(bits)
        if count:
            what = f"key {key_columns}" if column == "key_hash" else "identical row"
            overlap = sorted(name for index, name in enumerate(PARTITIONS) if touched >> index & 1)
            raise IsolationViolation(
                f"split leaks data across partitions: {count} {what} value(s) appear in more than one of "
                f"{overlap}; each {what} must belong to exactly one partition (split on it, or by hash of it)"
            )
    return summary


def check_disjoint(hashes: pd.DataFrame, key_columns: list[str]) -> dict[str, dict]:
    """Verify that the partitions of these rows (of :func:`row_hashes`) share no key and no row; return rows and
    fingerprint per partition. The same check as the split's, on rows held in memory.

    Raises:
        IsolationViolation: naming the partitions that overlap and how many keys or rows they share.
    """
    return disjoint_verdict(partition_totals(hashes), [shared_values(_pairs(hashes, column)) for column in CHECKED],
                            key_columns)


class PartitionView:
    """The only door from a stage to the split data: it opens on the declared partitions and no other."""

    def __init__(self, stage: str, allowed: tuple[str, ...], read: Callable[[str], dd.DataFrame],
                 summary: dict[str, dict]):
        self.stage = stage
        self.allowed = allowed
        self._read = read
        self._summary = summary
        self.reads: dict[str, dict] = {}

    def _check(self, name: str) -> None:
        if name not in self.allowed:
            raise IsolationViolation(
                f"stage {self.stage!r} may read only the {', '.join(self.allowed)} partition(s); "
                f"it asked for {name!r}, which is refused"
            )

    def frame(self, name: str) -> dd.DataFrame:
        """The partition as a lazy Dask DataFrame (recorded as read)."""
        self._check(name)
        self.reads[name] = dict(self._summary[name])
        return self._read(name)

    def pandas(self, name: str) -> pd.DataFrame:
        """The partition collected into one pandas DataFrame (recorded as read)."""
        return self.frame(name).compute()

    __getitem__ = pandas
