"""The grid file and each point's pipeline: every mistake is reported at its line of the grid file, with the closest
valid name; a parameter path that is not a field of the pipeline file names the closest field path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orchestrator.errors import SpecError
from orchestrator.experiments.grid import load_grid
from orchestrator.experiments.overrides import read_pipeline_file
from orchestrator.experiments.sweep import plan_experiment

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "flights"


def grid_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def problem(load, *args) -> str:
    with pytest.raises(SpecError) as caught:
        load(*args)
    return str(caught.value)


def plan(path: Path, pipeline: Path = EXAMPLE / "pipeline.yaml"):
    return plan_experiment(read_pipeline_file(pipeline), load_grid(path))


def test_the_example_grid_is_a_valid_sweep_of_the_example_pipeline():
    planned = plan(EXAMPLE / "grid.yaml")
    assert planned.metric.name == "roc_auc" and planned.metric.direction == "max"
    assert [p["model.params.max_depth"] for p in planned.points] == [4, 4, 8, 8]
    assert [pipeline.spec.model.params["l2_regularization"] for pipeline in planned.pipelines] == [0.0, 1.0, 0.0, 1.0]


def test_a_misspelt_top_level_field_gets_its_line_and_the_closest_name(tmp_path):
    path = grid_file(tmp_path, """
        name: depth
        paramters:
          model.params.max_depth: [3, 6]
    """)
    message = problem(load_grid, path)
    assert f"{path}:2: unknown field 'paramters' (did you mean 'parameters'?)" in message
    assert "field 'parameters' is required" in message


def test_a_misspelt_metric_lists_the_metrics_and_suggests_one(tmp_path):
    path = grid_file(tmp_path, """
        metric: roc-auc
        parameters:
          model.params.max_depth: [3, 6]
    """)
    assert f"{path}:1: field 'metric': got 'roc-auc'" in problem(load_grid, path)
    assert "(did you mean 'roc_auc'?)" in problem(load_grid, path)


def test_a_metric_the_pipelines_model_does_not_have_is_refused_at_its_line(tmp_path):
    path = grid_file(tmp_path, """
        parameters:
          model.params.max_depth: [3, 6]
        metric: rmse
    """)
    assert f"{path}:3: metric: a classification model has no metric 'rmse'" in problem(plan, path)


def test_a_misspelt_distribution_gets_its_line_and_the_closest_one(tmp_path):
    path = grid_file(tmp_path, """
        sample: {n: 4}
        parameters:
          model.params.max_depth: {int: [3, 9]}
          model.params.l2_regularization: {log_unifrom: [0.001, 1]}
    """)
    assert (f"{path}:4: parameters.model.params.l2_regularization: unknown distribution 'log_unifrom' "
            "(did you mean 'log_uniform'?)") in problem(load_grid, path)


@pytest.mark.parametrize("value, expected", [
    ("{uniform: [1, 0]}", "uniform: expected [low, high], two numbers with low < high, got [1, 0]"),
    ("{log_uniform: [0, 1]}", "log_uniform: the bounds must be above 0, got [0, 1]"),
    ("{int: [1.5, 4]}", "int: expected two whole numbers [low, high], got [1.5, 4]"),
    ("[]", "an empty list of values"),
    ("3", "got 3: expected a list of values, or a distribution such as {uniform: [0, 1]}"),
])
def test_a_parameter_whose_values_are_not_values_says_what_is_expected(tmp_path, value, expected):
    path = grid_file(tmp_path, f"""
        sample: {{n: 4}}
        parameters:
          model.params.max_depth: {value}
    """)
    assert f"{path}:3: parameters.model.params.max_depth: {expected}" in problem(load_grid, path)


def test_a_distribution_without_a_sample_asks_for_one(tmp_path):
    path = grid_file(tmp_path, """
        parameters:
          model.params.max_depth: [3, 6]
          model.params.l2_regularization: {uniform: [0, 1]}
    """)
    assert (f"{path}:3: parameters.model.params.l2_regularization: a distribution (uniform) is drawn from, not "
            "listed: add `sample: {n: 8, seed: 1}`") in problem(load_grid, path)


def test_a_grid_too_large_to_run_is_refused_before_anything_runs(tmp_path):
    path = grid_file(tmp_path, f"""
        parameters:
          model.params.max_depth: {list(range(40))}
          model.params.l2_regularization: {list(range(40))}
    """)
    assert f"{path}:1: the grid has 1,600 points, more than 1,000" in problem(load_grid, path)


def test_a_path_that_is_not_a_field_of_the_pipeline_names_its_grid_line_and_the_closest_field_path(tmp_path):
    path = grid_file(tmp_path, """
        parameters:
          model.params.max_depth: [3, 6]
          split.train_until: ["2013-06-01", "2013-09-01"]
          modle.params.C: [1]
          sources.flightz.location: [data/other]
          sources.flights.validation.columns.arr_delay.mx: [900]
          features.5.function: ["features:other"]
    """)
    message = problem(plan, path)
    assert (f"{path}:3: unknown field 'split.train_until' (did you mean 'split.boundaries.train'?); 'split' has: "
            "by, column, boundaries") in message
    assert f"{path}:4: unknown field 'modle.params.C' (did you mean 'model.params.C'?)" in message
    assert (f"{path}:5: the pipeline file has no 'flightz' under 'sources' (did you mean 'flights'?); it has: "
            "flights, weather, planes, airlines") in message
    assert (f"{path}:6: unknown field 'sources.flights.validation.columns.arr_delay.mx' (did you mean "
            "'sources.flights.validation.columns.arr_delay.max'?)") in message
    assert f"{path}:7: 'features' is a list of 2 in the pipeline file: '5' is not an index of it" in message
    assert f"{path}:2:" not in message, "model.params takes any estimator parameter"


def test_a_point_that_makes_an_invalid_pipeline_names_the_grid_line_the_point_and_the_pipelines_rule(tmp_path):
    path = grid_file(tmp_path, """
        parameters:
          model.params.max_depth: [3]
          split.boundaries.train: ["2013-09-01", "2013-12-01"]
    """)
    message = problem(plan, path)
    assert message.startswith(f"{path}:3: point 2 (model.params.max_depth=3, split.boundaries.train='2013-12-01') "
                              "is not a valid pipeline:")
    assert "split: boundaries must increase: train < validation < test" in message


def test_a_misspelt_choice_in_a_point_gets_the_pipelines_suggestion(tmp_path):
    path = grid_file(tmp_path, """
        parameters:
          split.by: [time, hsah]
    """)
    message = problem(plan, path)
    assert f"{path}:2: point 2 (split.by='hsah') is not a valid pipeline:" in message
    assert "(did you mean 'hash'?)" in message


def test_a_points_pipeline_keeps_the_files_folder_path_and_sha256_and_changes_only_its_parameters(tmp_path):
    path = grid_file(tmp_path, """
        parameters:
          split.boundaries.train: ["2013-06-01", "2013-08-01"]
          sources.flights.validation.max_bad_fraction: [0.1]
    """)
    source = read_pipeline_file(EXAMPLE / "pipeline.yaml")
    planned = plan_experiment(source, load_grid(path))
    for pipeline in planned.pipelines:
        assert (pipeline.path, pipeline.base_dir, pipeline.sha256) == (source.pipeline.path,
                                                                      source.pipeline.base_dir, source.pipeline.sha256)
        assert pipeline.spec.sources["flights"].location == "data/flights"
        assert pipeline.spec.sources["flights"].validation.max_bad_fraction == 0.1
        assert pipeline.spec.model == source.pipeline.spec.model
    assert [p.spec.split.boundaries["train"] for p in planned.pipelines] == ["2013-06-01", "2013-08-01"]
    assert source.pipeline.spec.split.boundaries["train"] == "2013-09-01", "the file's own pipeline is untouched"


def test_the_same_pipeline_and_points_give_the_same_experiment_id_whatever_its_name_or_metric(tmp_path):
    first = plan(grid_file(tmp_path, """
        name: one
        parameters:
          model.params.max_depth: [3, 6]
    """))
    renamed = plan(grid_file(tmp_path, """
        name: two
        metric: log_loss
        parameters:
          model.params.max_depth: [3, 6]
    """))
    other = plan(grid_file(tmp_path, """
        parameters:
          model.params.max_depth: [3, 7]
    """))
    assert first.id == renamed.id != other.id
    assert first.id.startswith("flights-delay-")
