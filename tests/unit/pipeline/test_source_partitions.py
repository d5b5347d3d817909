"""How a source's files become partitions: a partition never grows with its file, so memory stays bounded however
big the files are (a month of 8 million rows read as one partition took 14 GB to join)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from orchestrator.pipeline import sources
from orchestrator.pipeline.spec import Source

ROWS, ROW_GROUP = 40_000, 5_000


def _parquet(path, rows=ROWS):
    frame = pd.DataFrame({"id": range(rows), "amount": [i * 0.5 for i in range(rows)],
                          "name": [f"name-{i % 97}" for i in range(rows)]})
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=ROW_GROUP)
    return frame


def test_a_big_parquet_file_is_cut_at_its_row_groups_into_partitions_of_about_the_blocksize(tmp_path, monkeypatch):
    expected = _parquet(tmp_path / "big.parquet")
    monkeypatch.setattr(sources, "PARQUET_BLOCKSIZE", "200kB")
    source = Source.model_validate({"location": str(tmp_path / "big.parquet")})

    frame = sources.read_source(source, [tmp_path / "big.parquet"])

    assert 1 < frame.npartitions <= ROWS // ROW_GROUP
    pd.testing.assert_frame_equal(frame.compute().reset_index(drop=True), expected, check_dtype=False)


def test_small_parquet_files_stay_one_partition_each(tmp_path):
    files = [tmp_path / f"month-{i}.parquet" for i in range(3)]
    for path in files:
        _parquet(path, rows=1_000)

    frame = sources.read_source(Source.model_validate({"location": str(tmp_path / "*.parquet")}), files)

    assert frame.npartitions == 3 and len(frame) == 3_000


def test_the_source_s_read_options_still_decide_how_a_file_is_cut(tmp_path, monkeypatch):
    _parquet(tmp_path / "big.parquet")
    monkeypatch.setattr(sources, "PARQUET_BLOCKSIZE", "200kB")
    whole = Source.model_validate({"location": str(tmp_path / "big.parquet"), "read_options": {"split_row_groups": False}})

    assert sources.read_source(whole, [tmp_path / "big.parquet"]).npartitions == 1
