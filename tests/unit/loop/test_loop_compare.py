"""Champion against challenger on one fresh labelled holdout: the challenger wins only when it is better by the
margin and passed ONNX parity and its smoke test; a tie, a missing or NaN metric, or another holdout never promote."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.loop.compare import (
    AWAIT_APPROVAL,
    BELOW_MARGIN,
    BETTER,
    CHALLENGER,
    CHALLENGER_METRIC_UNUSABLE,
    CHAMPION,
    CHAMPION_METRIC_UNUSABLE,
    DEPLOY,
    HOLDOUT_MISMATCH,
    KEEP_CHAMPION,
    PARITY_FAILED,
    SMOKE_FAILED,
    TIE,
    WORSE,
    compare_by_rule,
    compare_models,
    metric_direction,
    next_step,
    primary_metric,
)
from orchestrator.monitoring.policy import ChallengerRule

PASSED = {"parity_passed": True, "smoke_passed": True}


def compare(old: float, new: float, metric: str = "roc_auc", margin: float = 0.005, **kwargs):
    """The champion scoring ``old`` and the challenger ``new`` on the same 800 holdout rows."""
    return compare_models({metric: old, "rows": 800}, {metric: new, "rows": 800}, metric=metric, margin=margin,
                          **{**PASSED, **kwargs})


def test_a_challenger_better_by_the_margin_wins_and_every_number_is_kept():
    result = compare(0.80, 0.82, champion="flights:1", challenger="flights:2", holdout={"rows": 800})
    assert (result.winner, result.code) == (CHALLENGER, BETTER) and result.challenger_wins
    assert (result.metric, result.direction, result.margin) == ("roc_auc", "higher", 0.005)
    assert (result.champion_value, result.challenger_value) == (0.80, 0.82)
    assert result.delta == pytest.approx(0.02)
    assert (result.champion, result.challenger, result.holdout) == ("flights:1", "flights:2", {"rows": 800})
    assert "better by 0.02 (margin 0.005)" in result.reason


def test_a_challenger_better_by_exactly_the_margin_meets_it():
    assert compare(0.8, 0.805).code == BETTER


def test_a_challenger_better_by_less_than_the_margin_keeps_the_champion():
    result = compare(0.80, 0.803)
    assert (result.winner, result.code) == (CHAMPION, BELOW_MARGIN)
    assert "less than the margin 0.005" in result.reason


def test_a_tie_never_promotes_even_with_no_margin():
    assert (compare(0.8, 0.8, margin=0).winner, compare(0.8, 0.8, margin=0).code) == (CHAMPION, TIE)


def test_lower_is_better_for_losses_and_errors():
    assert metric_direction("rmse") == metric_direction("log_loss") == metric_direction("mae") == "lower"
    assert compare(12.0, 11.0, metric="rmse", margin=0.5).code == BETTER
    assert compare(0.40, 0.45, metric="log_loss").code == WORSE
    result = compare(0.40, 0.45, metric="log_loss")
    assert result.delta == pytest.approx(-0.05)


def test_a_metric_of_ones_own_needs_its_direction():
    with pytest.raises(SpecError, match="metric 'cost' has no known direction"):
        compare(3.0, 2.0, metric="cost")
    assert compare(3.0, 2.0, metric="cost", direction="lower", margin=0.1).code == BETTER


@pytest.mark.parametrize("unusable", [float("nan"), float("inf"), None, "0.9", True])
def test_a_challenger_metric_that_is_missing_or_not_a_number_never_wins(unusable):
    result = compare_models({"roc_auc": 0.7}, {"roc_auc": unusable}, metric="roc_auc", margin=0, **PASSED)
    assert (result.winner, result.code, result.challenger_value, result.delta) == (
        CHAMPION, CHALLENGER_METRIC_UNUSABLE, None, None)
    assert compare_models({"roc_auc": 0.7}, {}, metric="roc_auc", margin=0, **PASSED).code == \
        CHALLENGER_METRIC_UNUSABLE


def test_a_champion_metric_that_is_not_a_number_does_not_promote_the_challenger_either():
    result = compare(float("nan"), 0.99)
    assert (result.winner, result.code) == (CHAMPION, CHAMPION_METRIC_UNUSABLE)


@pytest.mark.parametrize("parity, smoke, code", [(False, True, PARITY_FAILED), (None, True, PARITY_FAILED),
                                                 (True, False, SMOKE_FAILED), (True, None, SMOKE_FAILED)])
def test_a_challenger_failing_or_skipping_parity_or_smoke_never_wins_however_good(parity, smoke, code):
    result = compare(0.6, 0.99, parity_passed=parity, smoke_passed=smoke)
    assert (result.winner, result.code) == (CHAMPION, code)


def test_metrics_from_holdouts_of_different_sizes_are_not_compared():
    result = compare_models({"roc_auc": 0.7, "rows": 800}, {"roc_auc": 0.9, "rows": 799}, metric="roc_auc",
                            margin=0, **PASSED)
    assert (result.winner, result.code) == (CHAMPION, HOLDOUT_MISMATCH)


def test_a_negative_margin_is_refused():
    with pytest.raises(ValueError, match="margin"):
        compare(0.7, 0.8, margin=-0.01)


def test_the_primary_metric_is_the_rules_else_the_pipelines_tuning_scorer_else_the_tasks_default():
    assert primary_metric(ChallengerRule(metric="f1"), "classification", 2) == ("f1", "higher")
    assert primary_metric(ChallengerRule(), "classification", 2, "neg_log_loss") == ("log_loss", "lower")
    assert primary_metric(ChallengerRule(), "regression", None, "neg_mean_absolute_error") == ("mae", "lower")
    assert primary_metric(ChallengerRule(), "classification", 2) == ("roc_auc", "higher")
    assert primary_metric(ChallengerRule(), "classification", 5) == ("accuracy", "higher")
    assert primary_metric(ChallengerRule(), "regression") == ("rmse", "lower")
    with pytest.raises(SpecError, match="set monitoring.retrain.challenger.metric"):
        primary_metric(ChallengerRule(), "classification", 2, "balanced_accuracy")


def test_the_rule_of_the_policy_gives_metric_direction_and_margin():
    rule = ChallengerRule(metric="cost", direction="lower", margin=1.0)
    result = compare_by_rule(rule, {"cost": 10.0}, {"cost": 9.5}, task="regression", **PASSED)
    assert (result.code, result.metric, result.direction, result.margin) == (BELOW_MARGIN, "cost", "lower", 1.0)


def test_approval_decides_what_follows_a_win_and_a_loss_always_keeps_the_champion():
    win, loss = compare(0.7, 0.8), compare(0.8, 0.7)
    assert (next_step(win, "auto"), next_step(win, "manual")) == (DEPLOY, AWAIT_APPROVAL)
    assert next_step(loss, "auto") == next_step(loss, "manual") == KEEP_CHAMPION


metric_values = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
any_metric = st.sampled_from(["roc_auc", "pr_auc", "f1", "accuracy", "r2", "log_loss", "rmse", "mae"])


@settings(max_examples=300, deadline=None)
@given(champion=metric_values, challenger=metric_values | st.just(math.nan), metric=any_metric,
       margin=st.floats(min_value=0, max_value=10), parity=st.sampled_from([True, False, None]),
       smoke=st.sampled_from([True, False, None]))
def test_the_challenger_wins_only_when_better_by_the_margin_with_parity_and_smoke(champion, challenger, metric,
                                                                                  margin, parity, smoke):
    result = compare(champion, challenger, metric=metric, margin=margin, parity_passed=parity, smoke_passed=smoke)
    improvement = challenger - champion if metric_direction(metric) == "higher" else champion - challenger
    if result.challenger_wins:
        assert parity is True and smoke is True
        # Better by the margin, up to rounding: as close as compare's own tolerance (1e-9 relative, 1e-12 absolute).
        assert improvement > 0 and (improvement >= margin
                                    or math.isclose(improvement, margin, rel_tol=1e-9, abs_tol=1e-12))
    elif parity is True and smoke is True and not math.isnan(challenger):
        assert improvement <= 0 or improvement < margin


@settings(max_examples=200, deadline=None)
@given(champion=metric_values, metric=any_metric, margin=st.floats(min_value=0, max_value=1))
def test_a_tie_or_a_worse_challenger_is_never_the_winner(champion, metric, margin):
    assert not compare(champion, champion, metric=metric, margin=margin).challenger_wins
    worse = champion - 1 if metric_direction(metric) == "higher" else champion + 1
    assert not compare(champion, worse, metric=metric, margin=margin).challenger_wins
