"""Stage kinds are data: a new kind is one registration, and the graph built from the kinds is checked when built."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from orchestrator.errors import IsolationViolation, SpecError, StageFailed
from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.graph import GraphError, build_graph
from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline
from orchestrator.pipeline.stage_kinds import (
    STAGE_KINDS,
    Reads,
    StageKind,
    StageKindConflict,
    Writes,
    register_stage_kind,
)
from tests.conftest import write

PIPELINE = """
name: tiny
sources:
  events:
    location: events.csv
  customers:
    location: customers.csv
blend:
  base: events
  joins:
    - source: customers
      keys: [customer]
features:
  - derive: {double: "amount * 2"}
split:
  by: hash
  column: event_id
  fractions: {train: 0.6, validation: 0.1, test: 0.2, serve: 0.1}
"""

BUILT_IN_CHAIN = ["ingest.events", "ingest.customers", "blend", "features", "split"]


@pytest.fixture
def kinds():
    """The registry of stage kinds; whatever a test registers is gone when it ends."""
    with STAGE_KINDS.scoped() as registry:
        yield registry


@pytest.fixture
def tiny(tmp_path):
    rng = np.random.default_rng(3)
    pd.DataFrame({"event_id": np.arange(400), "customer": rng.integers(0, 20, 400),
                  "amount": rng.gamma(2.0, 10.0, 400).round(2)}).to_csv(tmp_path / "events.csv", index=False)
    pd.DataFrame({"customer": np.arange(20), "segment": ["gold", "std"] * 10}).to_csv(
        tmp_path / "customers.csv", index=False)
    return write(tmp_path / "pipeline.yaml", PIPELINE)


def _nothing(ctx: StageContext) -> dict:
    return {}


def names(pipeline) -> list[str]:
    return [stage.name for stage in build_graph(pipeline)]


# ------------------------------------------------------------------------------------------ the built-in kinds


def test_the_built_in_kinds_make_the_chain_in_the_order_runs_have_always_had(tiny, kinds):
    assert names(load_pipeline(tiny)) == BUILT_IN_CHAIN


def test_model_stages_exist_only_when_the_file_declares_a_model_and_score_only_with_score_serve(tiny, kinds):
    model = ("model:\n  name: m\n  task: classification\n  target: segment\n  features: {numeric: [amount]}\n"
             "  estimator: sklearn.linear_model.LogisticRegression\n")
    tiny.write_text(tiny.read_text() + model)
    assert names(load_pipeline(tiny))[len(BUILT_IN_CHAIN):] == ["train", "evaluate", "export", "register", "score"]
    tiny.write_text(tiny.read_text() + "score_serve: false\n")
    assert names(load_pipeline(tiny))[len(BUILT_IN_CHAIN):] == ["train", "evaluate", "export", "register"]


def test_a_stage_kind_name_can_be_registered_once_only(kinds):
    with pytest.raises(StageKindConflict, match="a stage kind named 'blend' is already registered"):
        register_stage_kind(StageKind("blend", _nothing))


def test_a_scoped_registration_is_gone_after_the_scope(tiny):
    with STAGE_KINDS.scoped():
        register_stage_kind(StageKind("profile", _nothing, reads=Reads(partitions=("train",))))
        assert "profile" in names(load_pipeline(tiny))
    assert "profile" not in STAGE_KINDS
    assert names(load_pipeline(tiny)) == BUILT_IN_CHAIN


# ------------------------------------------------------------------------------------------ graph checks


def test_a_new_stage_runs_after_what_it_reads_whatever_the_order_it_was_registered_in(tiny, kinds):
    register_stage_kind(StageKind("report", _nothing, reads=Reads(outputs=("summary",))))
    register_stage_kind(StageKind("summary", _nothing, reads=Reads(outputs=("features",))))
    assert names(load_pipeline(tiny)) == BUILT_IN_CHAIN + ["summary", "report"]


def test_an_unknown_input_is_refused_naming_the_stage_with_a_suggestion(tiny, kinds):
    register_stage_kind(StageKind("profile", _nothing, reads=Reads(outputs=("featurs",))))
    with pytest.raises(GraphError, match=r"pipeline.yaml: stage 'profile' reads 'featurs', which no stage of "
                                         r"this pipeline writes \(did you mean 'features'\?\); its stages are "
                                         r"ingest.events, ingest.customers, blend"):
        build_graph(load_pipeline(tiny))


def test_graph_errors_are_spec_errors_with_their_exit_code(tiny, kinds):
    register_stage_kind(StageKind("profile", _nothing, reads=Reads(outputs=("nowhere",))))
    with pytest.raises(SpecError) as caught:
        build_graph(load_pipeline(tiny))
    assert caught.value.exit_code == SpecError.exit_code


def test_stages_reading_each_other_in_a_cycle_are_refused_naming_the_cycle(tiny, kinds):
    register_stage_kind(StageKind("left", _nothing, reads=Reads(outputs=("features", "right"))))
    register_stage_kind(StageKind("right", _nothing, reads=Reads(outputs=("left",))))
    with pytest.raises(GraphError, match="stages read each other in a cycle: 'left' reads 'right' reads 'left'"):
        build_graph(load_pipeline(tiny))


def test_a_stage_reading_itself_is_a_cycle(tiny, kinds):
    register_stage_kind(StageKind("echo", _nothing, reads=Reads(outputs=("echo",))))
    with pytest.raises(GraphError, match="cycle: 'echo' reads 'echo'"):
        build_graph(load_pipeline(tiny))


def test_two_stages_writing_the_same_output_are_refused(tiny, kinds):
    # The ingest kind already writes one output per source, under "ingest.<source>".
    register_stage_kind(StageKind("ingest.events", _nothing))
    with pytest.raises(GraphError, match="stage 'ingest.events' is declared twice \\(by the 'ingest' and "
                                         "'ingest.events' stage kinds\\): two stages would write the same output"):
        build_graph(load_pipeline(tiny))


def test_reading_a_partition_the_split_does_not_write_is_refused(tiny, kinds):
    register_stage_kind(StageKind("profile", _nothing, reads=Reads(partitions=("train", "tset"))))
    with pytest.raises(GraphError, match=r"stage 'profile' reads partition 'tset' \(did you mean 'test'\?\), which "
                                         r"'split' does not write; its partitions are train, validation, test, serve"):
        build_graph(load_pipeline(tiny))


def test_reading_the_whole_split_output_is_refused_so_partitions_pass_only_through_the_view(tiny, kinds):
    register_stage_kind(StageKind("peek", _nothing, reads=Reads(outputs=("split",))))
    with pytest.raises(GraphError, match="stage 'peek' reads the whole output of 'split', which is split into "
                                         "partitions; declare the partitions it needs in reads.partitions"):
        build_graph(load_pipeline(tiny))


def test_reading_partitions_of_a_stage_that_writes_none_is_refused(tiny, kinds):
    register_stage_kind(StageKind("peek", _nothing, reads=Reads(partitions=("train",), partitions_of="features")))
    with pytest.raises(GraphError, match="stage 'peek' reads partitions of 'features', which writes no partitions"):
        build_graph(load_pipeline(tiny))


def test_every_problem_of_a_graph_is_reported_at_once(tiny, kinds):
    register_stage_kind(StageKind("one", _nothing, reads=Reads(outputs=("blnd",))))
    register_stage_kind(StageKind("two", _nothing, reads=Reads(partitions=("srve",))))
    with pytest.raises(GraphError) as caught:
        build_graph(load_pipeline(tiny))
    lines = str(caught.value).splitlines()
    assert len(lines) == 2, "one line per problem"
    assert "stage 'one' reads 'blnd'" in lines[0] and "stage 'two' reads partition 'srve'" in lines[1]


def test_a_stage_opening_an_output_its_kind_does_not_declare_is_refused(tmp_path):
    ctx = StageContext("profile", None, tmp_path, tmp_path, None, None, "run", locations={"features": "cache/f/1"})
    with pytest.raises(StageFailed, match="stage 'profile' reads the output of 'blend', which its kind does not "
                                          r"declare in reads.outputs \(declared: features\)"):
        ctx.output("blend")


# ------------------------------------------------------------------------------------------ a new kind, really run


def profile(ctx: StageContext) -> dict:
    """A new kind: a summary of the train partition, written beside its metadata."""
    rows = ctx.partitions.pandas("train")
    summary = {"rows": len(rows), "amount_mean": round(float(rows["amount"].mean()), 6)}
    (ctx.out_dir / "profile.json").write_text(json.dumps(summary))
    return {"rows_in": len(rows), "summary": summary}


def count_rows(ctx: StageContext) -> dict:
    """A new kind: the row count of an upstream output, computed on the cluster."""
    rows = int(ctx.output("features").shape[0].compute())
    return {"rows_in": rows, "counted": rows}


def peek_at_test(ctx: StageContext) -> dict:
    """A kind that declares the train partition and asks for the test one."""
    return {"rows_in": len(ctx.partitions.pandas("test"))}


@pytest.mark.integration
def test_a_new_stage_kind_is_run_recorded_and_cached_without_touching_runner_graph_or_cli(tiny, kinds, store,
                                                                                           dask_client):
    register_stage_kind(StageKind("profile", profile, reads=Reads(partitions=("train",)),
                                  writes=Writes(record=("summary",)), config=lambda site: {"columns": ["amount"]}))
    register_stage_kind(StageKind("row_count", count_rows, reads=Reads(outputs=("features",)),
                                  writes=Writes(record=("counted",))))

    first = run_pipeline(load_pipeline(tiny), store, dask_client).record
    stages = first["stages"]
    assert list(stages) == BUILT_IN_CHAIN + ["profile", "row_count"]
    train = stages["split"]["partitions"]["train"]
    assert stages["profile"]["status"] == "ran"
    assert stages["profile"]["reads"] == {"train": train}, "the record shows exactly what the new stage read"
    assert stages["profile"]["summary"]["rows"] == train["rows"] == stages["profile"]["rows_in"]
    assert stages["row_count"]["counted"] == stages["features"]["rows_out"] == 400
    location = stages["profile"]["outputs"][0]["key"]
    assert location.startswith("cache/profile/")
    published = json.loads((store.dataset_path(location) / "profile.json").read_text())
    assert published == stages["profile"]["summary"]
    published_as = {"name": "profile", "key": location, "sha256": stages["profile"]["outputs"][0]["sha256"]}
    assert published_as in first["artifacts"]

    second = run_pipeline(load_pipeline(tiny), store, dask_client).record
    assert {name: stage["status"] for name, stage in second["stages"].items()} == dict.fromkeys(
        BUILT_IN_CHAIN + ["profile", "row_count"], "cached")
    assert second["stages"]["profile"]["key"] == stages["profile"]["key"]
    assert second["stages"]["profile"]["summary"] == stages["profile"]["summary"]
    assert second["stages"]["row_count"]["counted"] == 400


@pytest.mark.integration
def test_a_new_stage_kind_reaches_only_the_partitions_it_declares(tiny, kinds, store, dask_client):
    register_stage_kind(StageKind("peek", peek_at_test, reads=Reads(partitions=("train",))))
    with pytest.raises(IsolationViolation, match="stage 'peek' may read only the train partition"):
        run_pipeline(load_pipeline(tiny), store, dask_client)
