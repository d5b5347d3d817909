"""A grid's points: every combination in a fixed order, or a random sample that the seed makes the same every time;
and which stages points share (the ones whose configuration the varied fields do not reach)."""

from __future__ import annotations

import math
from pathlib import Path

from orchestrator.experiments.expand import expand
from orchestrator.experiments.grid import GridSpec, load_grid
from orchestrator.experiments.overrides import read_pipeline_file
from orchestrator.experiments.sweep import plan_experiment, stage_signatures

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "flights"


def grid(**fields) -> GridSpec:
    return GridSpec.model_validate(fields)


def test_a_full_grid_runs_every_combination_the_last_parameter_varying_fastest():
    points = expand(grid(parameters={"model.params.max_depth": [3, 6], "split.boundaries.train": ["a", "b", "c"]}))
    assert points == [
        {"model.params.max_depth": 3, "split.boundaries.train": "a"},
        {"model.params.max_depth": 3, "split.boundaries.train": "b"},
        {"model.params.max_depth": 3, "split.boundaries.train": "c"},
        {"model.params.max_depth": 6, "split.boundaries.train": "a"},
        {"model.params.max_depth": 6, "split.boundaries.train": "b"},
        {"model.params.max_depth": 6, "split.boundaries.train": "c"},
    ]


SPACE = {
    "model.params.learning_rate": {"log_uniform": [0.001, 1.0]},
    "model.params.l2_regularization": {"uniform": [0, 2]},
    "model.params.max_depth": {"int": [2, 4]},
    "model.params.loss": {"choice": ["log_loss", "exponential"]},
    "model.params.max_bins": [63, 255],
}


def test_a_sample_draws_n_points_the_same_for_the_same_seed():
    first = expand(grid(parameters=SPACE, sample={"n": 50, "seed": 1}))
    again = expand(grid(parameters=SPACE, sample={"n": 50, "seed": 1}))
    other = expand(grid(parameters=SPACE, sample={"n": 50, "seed": 2}))
    assert len(first) == 50
    assert first == again
    assert first != other


def test_each_distribution_draws_within_its_bounds_and_int_includes_both_ends():
    points = expand(grid(parameters=SPACE, sample={"n": 200, "seed": 3}))
    rates = [p["model.params.learning_rate"] for p in points]
    assert all(0.001 <= r <= 1.0 for r in rates)
    # Log-uniform: as many draws below 0.0316 (the geometric middle) as above, roughly.
    assert 70 < sum(r < math.sqrt(0.001) for r in rates) < 130
    assert all(0 <= p["model.params.l2_regularization"] <= 2 for p in points)
    assert {p["model.params.max_depth"] for p in points} == {2, 3, 4}
    assert all(isinstance(p["model.params.max_depth"], int) for p in points)
    assert {p["model.params.loss"] for p in points} == {"log_loss", "exponential"}
    assert {p["model.params.max_bins"] for p in points} == {63, 255}, "a list in a sample is drawn from"


def test_adding_a_parameter_at_the_end_of_a_sample_keeps_every_earlier_draw_of_the_first_point():
    first = expand(grid(parameters={"model.params.max_depth": {"int": [2, 9]}}, sample={"n": 1, "seed": 5}))
    more = expand(grid(parameters={"model.params.max_depth": {"int": [2, 9]}, "model.params.max_bins": [63, 255]},
                       sample={"n": 1, "seed": 5}))
    assert more[0]["model.params.max_depth"] == first[0]["model.params.max_depth"]


def test_points_over_model_parameters_share_every_stage_before_training(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("parameters:\n  model.params.max_depth: [3, 6]\n")
    planned = plan_experiment(read_pipeline_file(EXAMPLE / "pipeline.yaml"), load_grid(path))
    first, second = (stage_signatures(p) for p in planned.pipelines)
    shared = sorted(name for name in first if first[name] == second[name])
    assert shared == ["blend", "features", "ingest.airlines", "ingest.flights", "ingest.planes", "ingest.weather",
                      "split"]
    assert {"train", "evaluate", "export", "score"} <= {name for name in first if first[name] != second[name]}
    assert "register" not in first, "registering always runs: it is never shared"


def test_points_over_the_split_share_ingest_blend_and_features_only(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text('parameters:\n  split.boundaries.train: ["2013-07-01", "2013-08-01"]\n')
    planned = plan_experiment(read_pipeline_file(EXAMPLE / "pipeline.yaml"), load_grid(path))
    first, second = (stage_signatures(p) for p in planned.pipelines)
    assert sorted(name for name in first if first[name] == second[name]) == [
        "blend", "features", "ingest.airlines", "ingest.flights", "ingest.planes", "ingest.weather"]
