"""The isolation check tells repeats inside one partition (allowed) from repeats across partitions (refused)."""

import numpy as np
import pandas as pd
import pytest

from orchestrator.errors import IsolationViolation
from orchestrator.pipeline.isolation import PARTITION, check_disjoint, row_hashes
from orchestrator.pipeline.spec import Split
from orchestrator.pipeline.split import label_partition


def hashes(parts, keys, rows):
    return pd.DataFrame({PARTITION: pd.Series(parts, dtype="string"),
                         "key_hash": np.asarray(keys, dtype=np.uint64), "row_hash": np.asarray(rows, dtype=np.uint64)})


def test_a_key_repeated_within_one_partition_passes():
    summary = check_disjoint(hashes(["train", "train", "serve"], [1, 1, 2], [10, 11, 12]), ["id"])
    assert summary["train"]["rows"] == 2 and summary["serve"]["rows"] == 1


def test_a_key_repeated_within_one_partition_and_also_in_another_fails_counting_it_once():
    with pytest.raises(IsolationViolation, match=r"1 key \['id'\] value\(s\) appear in more than one of \['serve', 'train'\]"):
        check_disjoint(hashes(["train", "train", "serve", "test"], [1, 1, 1, 2], [10, 11, 12, 13]), ["id"])


def test_rows_without_a_time_go_to_serve_and_the_labels_feed_the_check():
    frame = pd.DataFrame({"id": [1, 2, 3], "ts": pd.to_datetime(["2024-01-01", None, "2024-12-01"], utc=True)})
    split = Split(by="time", column="ts", boundaries={"train": "2024-09-01", "validation": "2024-10-01", "test": "2024-11-01"})
    labelled = label_partition(frame, split)
    assert labelled[PARTITION].tolist() == ["train", "serve", "serve"]
    assert list(frame.columns) == ["id", "ts"]  # the caller's frame is left alone
    summary = check_disjoint(row_hashes(labelled, ["id"]), ["id"])
    assert {name: part["rows"] for name, part in summary.items()} == {"train": 1, "validation": 0, "test": 0, "serve": 2}


def _spread(frame: pd.DataFrame, partitions: int):
    import dask.dataframe as dd

    return dd.from_pandas(frame, npartitions=partitions, sort=False)


def test_on_dask_partitions_the_check_finds_a_key_whose_copies_sit_in_different_dask_partitions(dask_client):
    """Each Dask partition is clean on its own: the leak shows only once every copy of a value meets in one bucket."""
    import dask

    from orchestrator.pipeline.isolation import disjoint_parts, disjoint_verdict

    rows = 6_000
    parts = ["train"] * (rows - 1) + ["test"]
    keys = list(range(rows - 1)) + [0]  # the last row, in the last Dask partition, repeats the first row's key
    frame = hashes(parts, keys, range(rows))
    totals, *shared = dask.compute(*disjoint_parts(_spread(frame, 6)))
    with pytest.raises(IsolationViolation, match=r"1 key \['id'\] value\(s\) appear in more than one of \['test', 'train'\]"):
        disjoint_verdict(totals, shared, ["id"])


def test_on_dask_partitions_the_check_gives_the_in_memory_check_s_rows_and_fingerprints(dask_client):
    import dask

    from orchestrator.pipeline.isolation import disjoint_parts, disjoint_verdict

    generator = np.random.default_rng(7)
    rows = 10_000
    frame = hashes(generator.choice(["train", "validation", "test", "serve"], rows),
                   np.arange(rows), generator.integers(0, 2**63, rows))
    totals, *shared = dask.compute(*disjoint_parts(_spread(frame, 9)))
    assert disjoint_verdict(totals, shared, ["id"]) == check_disjoint(frame, ["id"])
