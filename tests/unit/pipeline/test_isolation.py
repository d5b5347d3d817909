"""Stages reach only the partitions they declare, and partitions never share a key or a row."""

import numpy as np
import pandas as pd
import pytest

from orchestrator.errors import IsolationViolation
from orchestrator.pipeline.isolation import PARTITION, PartitionView, check_disjoint
from orchestrator.pipeline.kinds import evaluate, train

# What the built-in kinds declare they read.
STAGE_READS = {"train": train.KIND.reads.partitions, "evaluate": evaluate.KIND.reads.partitions}


def hashes(rows):
    return pd.DataFrame(rows, columns=[PARTITION, "key_hash", "row_hash"]).astype(
        {PARTITION: "string", "key_hash": np.uint64, "row_hash": np.uint64})


def test_training_may_never_read_test_or_serve():
    assert "test" not in STAGE_READS["train"] and "serve" not in STAGE_READS["train"]
    assert STAGE_READS["evaluate"] == ("test",)


def test_a_stage_asking_for_an_undeclared_partition_is_refused():
    summary = {name: {"rows": 0, "fingerprint": "0-0"} for name in ("train", "validation", "test", "serve")}
    opened = []
    view = PartitionView("train", STAGE_READS["train"], opened.append, summary)
    with pytest.raises(IsolationViolation, match="stage 'train' may read only the train, validation partition"):
        view.pandas("test")
    with pytest.raises(IsolationViolation):
        view["serve"]
    assert view.reads == {} and opened == []


def test_disjoint_partitions_pass_with_a_fingerprint_each():
    summary = check_disjoint(hashes([("train", 1, 10), ("test", 2, 20), ("serve", 3, 30)]), ["id"])
    assert summary["train"] == {"rows": 1, "fingerprint": "1-000000000000000a"}
    assert summary["validation"]["rows"] == 0


def test_an_identical_row_in_two_partitions_fails():
    with pytest.raises(IsolationViolation, match="1 identical row value"):
        check_disjoint(hashes([("train", 1, 10), ("test", 2, 10)]), ["id"])


def test_a_key_in_two_partitions_fails_naming_them():
    with pytest.raises(IsolationViolation, match=r"in more than one of \['test', 'train'\]"):
        check_disjoint(hashes([("train", 1, 10), ("test", 1, 20)]), ["id"])
