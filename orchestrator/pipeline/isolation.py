"""Train / validation / test / serve isolation, enforced rather than encouraged.

Two guarantees:

* after the split, no entity key and no identical row sits in two partitions (``check_disjoint``);
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


def _fingerprint(row_hash: np.ndarray) -> str:
    # Order-independent: the same rows in any partitioning give the same fingerprint.
    total = int(row_hash.astype(np.uint64).sum(dtype=np.uint64))
    return f"{len(row_hash)}-{total:016x}"


def _shared_values(codes: np.ndarray, values: np.ndarray) -> tuple[int, list[str]]:
    """How many hash values sit in more than one partition, and which partitions they touch.

    A plain sort of the uint64 hashes (vectorised, the cheapest global operation here) finds the repeated values;
    usually there are none. Only rows carrying a repeated value are then grouped to see whether their partitions
    differ: equal values side by side span two partitions exactly when two neighbours carry different codes.
    """
    ordered = np.sort(values)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not len(repeated):
        return 0, []
    candidates = np.isin(values, repeated)
    values, codes = values[candidates], codes[candidates]
    order = np.argsort(values, kind="stable")
    ordered, parts = values[order], codes[order]
    clash = (ordered[1:] == ordered[:-1]) & (parts[1:] != parts[:-1])
    if not clash.any():
        return 0, []
    count = len(np.unique(ordered[1:][clash]))
    touched = set(parts[1:][clash]) | set(parts[:-1][clash])
    return count, sorted(PARTITIONS[int(code)] for code in touched)


def check_disjoint(hashes: pd.DataFrame, key_columns: list[str]) -> dict[str, dict]:
    """Verify that partitions share no key and no row; return rows and fingerprint per partition.

    Raises:
        IsolationViolation: naming the partitions that overlap and how many keys or rows they share.
    """
    codes = pd.Categorical(hashes[PARTITION], categories=list(PARTITIONS)).codes
    row_hash = hashes["row_hash"].to_numpy()
    summary = {}
    for index, name in enumerate(PARTITIONS):
        mine = row_hash[codes == index]
        summary[name] = {"rows": len(mine), "fingerprint": _fingerprint(mine)}
    for column, what in (("key_hash", f"key {key_columns}"), ("row_hash", "identical row")):
        count, overlap = _shared_values(codes, hashes[column].to_numpy())
        if count:
            raise IsolationViolation(
                f"split leaks data across partitions: {count} {what} value(s) appear in more than one of "
                f"{overlap}; each {what} must belong to exactly one partition (split on it, or by hash of it)"
            )
    return summary


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
