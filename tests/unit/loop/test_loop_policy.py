"""The closed loop's policy, declared in the pipeline file's ``monitoring:`` section (``watch:`` and ``retrain:``):
safe defaults, and every mistake reported with file, line and field like the rest of the file."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.pipeline.spec import load_pipeline
from tests.support.monitored_pipeline import line_with, pipeline_with_monitoring


def _error(path) -> str:
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    return str(caught.value)


def test_without_a_watch_or_retrain_section_the_loop_gets_its_safe_defaults(tmp_path):
    policy = load_pipeline(pipeline_with_monitoring(tmp_path, "")).spec.monitoring
    assert (policy.watch.every_s, policy.watch.drifted, policy.watch.windows) == (86400, 3, 3)
    assert policy.retrain.cooldown_s == 7 * 86400
    assert (policy.retrain.max_count, policy.retrain.max_period_s) == (2, 30 * 86400)
    assert policy.retrain.approval == "auto"
    assert (policy.retrain.challenger.metric, policy.retrain.challenger.margin) == (None, 0.005)
    # The drift check's own fields keep their defaults: the minimum window size is the check's min_rows.
    assert policy.min_rows == 1000 and policy.drift_share == 0.5


def test_the_watch_and_retrain_sections_set_every_rule_of_the_loop(tmp_path):
    policy = load_pipeline(pipeline_with_monitoring(tmp_path, """
monitoring:
  min_rows: 500
  watch: {every: 6h, windows: 4, drifted: 2}
  retrain:
    cooldown: 1d12h
    max: 3 per 14d
    approval: manual
    challenger: {metric: log_loss, margin: 0.01}
""")).spec.monitoring
    assert policy.min_rows == 500
    assert (policy.watch.every_s, policy.watch.windows, policy.watch.drifted) == (6 * 3600, 4, 2)
    assert policy.retrain.cooldown_s == 36 * 3600
    assert (policy.retrain.max_count, policy.retrain.max_period_s) == (3, 14 * 86400)
    assert policy.retrain.approval == "manual"
    assert (policy.retrain.challenger.metric, policy.retrain.challenger.margin) == ("log_loss", 0.01)


def test_the_policy_saved_in_a_card_reads_back_the_same(tmp_path):
    policy = DriftPolicy.model_validate({"watch": {"every": "2h", "drifted": 2}, "retrain": {"max": "1 per 7d"}})
    assert DriftPolicy.model_validate(policy.model_dump()) == policy


def test_more_drifted_windows_than_windows_is_refused_on_the_watchline_with(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  watch:\n    windows: 2\n    drifted: 3\n")
    message = _error(path)
    assert f"{path}:{line_with(path, 'watch:')}: monitoring.watch: drifted (3) cannot exceed windows (2)" in message


def test_a_misspelt_watch_field_names_its_line_and_the_closest_field(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  watch:\n    evry: 1d\n")
    assert (f"{path}:{line_with(path, 'evry')}: unknown field 'monitoring.watch.evry' (did you mean 'every'?)"
            in _error(path))


def test_a_cooldown_that_is_not_a_duration_names_its_field_and_the_grammar(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  retrain:\n    cooldown: a week\n")
    message = _error(path)
    assert f"{path}:{line_with(path, 'cooldown')}: monitoring.retrain.cooldown: invalid duration 'a week'" in message
    assert "8h, 30m, 90s, 1h30m or 7d" in message


@pytest.mark.parametrize("cap", ["2", "0 per 30d", "2 per month", "two per 30d"])
def test_a_retrain_cap_must_be_a_count_per_duration(tmp_path, cap):
    path = pipeline_with_monitoring(tmp_path, f"monitoring:\n  retrain:\n    max: {cap}\n")
    message = _error(path)
    assert f"{path}:{line_with(path, 'max:')}: monitoring.retrain.max:" in message
    assert "2 per 30d" in message or "invalid duration" in message


def test_an_unknown_metric_without_a_direction_is_refused_with_the_closest_known_one(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  retrain:\n    challenger: {metric: rocauc}\n")
    message = _error(path)
    assert f"{path}:{line_with(path, 'challenger')}: monitoring.retrain.challenger: metric 'rocauc'" in message
    assert "(did you mean 'roc_auc'?)" in message and "direction: higher" in message


def test_a_metric_of_ones_own_is_accepted_with_its_direction(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  retrain:\n    challenger: {metric: cost, direction: lower}\n")
    challenger = load_pipeline(path).spec.monitoring.retrain.challenger
    assert (challenger.metric, challenger.direction) == ("cost", "lower")


def test_a_negative_margin_and_an_unknown_approval_are_refused_naming_their_fields(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  retrain:\n    approval: automatic\n    challenger: {margin: -0.1}\n")
    message = _error(path)
    assert (f"{path}:{line_with(path, 'approval')}: field 'monitoring.retrain.approval': got 'automatic', expected "
            f"'auto' or 'manual'") in message
    assert f"{path}:{line_with(path, 'margin')}: monitoring.retrain.challenger.margin:" in message
    assert "greater than or equal to 0" in message
