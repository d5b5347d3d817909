"""Resuming an experiment by id: only while the pipeline file and the grid's points are still the ones it ran;
otherwise the command says which changed, before any cluster starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.artifacts.lineage import save_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import ArtifactNotFound, DataopsError
from orchestrator.experiments.grid import load_grid
from orchestrator.experiments.overrides import read_pipeline_file
from orchestrator.experiments.record import ExperimentRecord, PointRecord, save_experiment
from orchestrator.experiments.sweep import plan_experiment, run_experiment
from orchestrator.usecases.experiments import run_experiment_files

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "flights"


@pytest.fixture
def kept(tmp_path):
    """An experiment over a copy of the example pipeline, kept in a local store: (pipeline, grid, store, id)."""
    pipeline = tmp_path / "pipeline.yaml"
    shutil.copy(EXAMPLE / "pipeline.yaml", pipeline)
    grid = tmp_path / "grid.yaml"
    grid.write_text("parameters:\n  model.params.max_depth: [3, 6]\n")
    source, loaded = read_pipeline_file(pipeline), load_grid(grid)
    plan = plan_experiment(source, loaded)
    store = tmp_path / "store"
    save_experiment(LocalStore(store), ExperimentRecord(
        id=plan.id, name=plan.name, pipeline={"name": "flights-delay", "path": str(pipeline),
                                              "sha256": source.pipeline.sha256},
        grid=loaded.spec.to_yaml(), grid_path=str(grid), metric=plan.metric.to_dict(), created_at="2027-06-01T00:00:00Z",
        points=[PointRecord(n, p) for n, p in enumerate(plan.points, 1)]))
    return pipeline, grid, str(store), plan.id


def test_resuming_with_other_points_says_the_grid_differs(kept, tmp_path):
    pipeline, _, store, exp_id = kept
    other = tmp_path / "other.yaml"
    other.write_text("parameters:\n  model.params.max_depth: [3, 7]\n")
    with pytest.raises(DataopsError, match=rf"cannot resume experiment {exp_id}: the grid's parameters differ"):
        run_experiment_files(pipeline, other, store, resume=exp_id)


def test_resuming_after_the_pipeline_file_changed_says_so_and_names_the_file_it_ran(kept):
    pipeline, _, store, exp_id = kept
    pipeline.write_text(pipeline.read_text().replace("cv: 3", "cv: 4"))
    with pytest.raises(DataopsError, match=rf"cannot resume experiment {exp_id}: the pipeline file has changed "
                                           rf"since \(it ran {pipeline}, sha256 [0-9a-f]{{12}}\)"):
        run_experiment_files(None, None, store, resume=exp_id)


def test_resuming_an_unknown_experiment_names_the_closest_id(kept):
    _, _, store, exp_id = kept
    with pytest.raises(ArtifactNotFound, match=rf"no experiment '{exp_id[:-1]}x' in .* \(did you mean '{exp_id}'\?\)"):
        run_experiment_files(None, None, store, resume=exp_id[:-1] + "x")


def test_an_experiment_needs_a_pipeline_and_a_grid_unless_it_resumes(tmp_path):
    with pytest.raises(DataopsError, match=r"needs a pipeline file and --grid FILE \(or --resume ID\)"):
        run_experiment_files(EXAMPLE / "pipeline.yaml", None, str(tmp_path / "store"))


def test_a_split_window_is_resolved_at_the_experiments_as_of_which_a_resumed_sweep_keeps(tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    text = (EXAMPLE / "pipeline.yaml").read_text()
    fixed = 'boundaries: {train: "2013-09-01", validation: "2013-10-01", test: "2013-11-01"}'
    assert fixed in text, "the example's split changed: update this test"
    pipeline.write_text(text.replace(fixed, "window: {train: 180d, validation: 14d, test: 14d, label_delay: 1d}"))
    grid = tmp_path / "grid.yaml"
    grid.write_text("parameters:\n  model.params.max_depth: [3, 6]\n")
    source, loaded = read_pipeline_file(pipeline), load_grid(grid)
    plan = plan_experiment(source, loaded)
    store = LocalStore(tmp_path / "store")
    for number in (1, 2):  # both points ran before: the sweep reuses them and computes nothing
        save_record(store, {"run_id": f"run-{number}", "status": "succeeded", "parameters": {}})
    save_experiment(store, ExperimentRecord(
        id=plan.id, name=plan.name, pipeline={"name": "flights-delay", "path": str(pipeline),
                                              "sha256": source.pipeline.sha256},
        grid=loaded.spec.to_yaml(), grid_path=str(grid), metric=plan.metric.to_dict(),
        created_at="2027-06-01T00:00:00Z", as_of="2027-06-01T00:00:00Z",
        points=[PointRecord(n, p, "succeeded", f"run-{n}") for n, p in enumerate(plan.points, 1)]))

    record = run_experiment(plan, source, loaded, store, client=None)

    assert record.status == "succeeded"
    assert record.as_of == "2027-06-01T00:00:00Z"
    resolved = [p.at(record.as_of).spec.split for p in plan.pipelines]
    assert resolved[0] == resolved[1]
    assert resolved[0].boundaries == {"train": "2027-05-03T00:00:00Z", "validation": "2027-05-17T00:00:00Z",
                                      "test": "2027-05-31T00:00:00Z"}
