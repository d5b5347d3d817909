"""Drift statistics that stay quiet on windows drawn from the reference and on harmless shifts of huge windows,
catch real shifts, and merge exactly: the statistical acceptance of the drift check."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.monitoring import statistics
from orchestrator.monitoring.check import DRIFT, INSUFFICIENT, NO_DRIFT, check_drift
from orchestrator.monitoring.counts import count_window, merge_windows
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.monitoring.profile import ReferenceProfile, build_profile

NUMERIC = [f"x{i}" for i in range(10)]
CATEGORICAL = [f"c{i}" for i in range(5)]
LEVELS = np.array(["north", "south", "east", "west"])
SHARES = [0.4, 0.3, 0.2, 0.1]
IMPORTANCE = {"x0": 0.30, "c0": 0.20, "x1": 0.10, **{n: 0.01 for n in NUMERIC[2:] + CATEGORICAL[1:]}}


def rows(rng, n, shift=0.0, shares=SHARES):
    frame = pd.DataFrame({name: rng.normal(size=n) for name in NUMERIC})
    frame["x0"] += shift
    for name in CATEGORICAL:
        frame[name] = LEVELS[rng.choice(4, size=n, p=shares if name == "c0" else SHARES)]
    return frame


@pytest.fixture(scope="module")
def reference():
    return rows(np.random.default_rng(7), 200_000)


@pytest.fixture(scope="module")
def profile(reference):
    return build_profile(reference, NUMERIC, CATEGORICAL, importance=IMPORTANCE)


def verdict(profile, frame, policy=None):
    return check_drift(profile, count_window(profile, frame), policy)


def test_fewer_than_one_in_a_hundred_windows_resampled_from_the_reference_raise_the_verdict(profile, reference):
    rng = np.random.default_rng(11)
    raised = sum(
        verdict(profile, reference.sample(1000, replace=True, random_state=rng)).verdict == DRIFT
        for _ in range(200)
    )
    assert raised < 2, f"{raised} of 200 windows without drift were called drifted"


def test_half_a_sigma_shift_of_an_important_feature_is_caught_at_5000_rows(profile):
    rng = np.random.default_rng(12)
    results = [verdict(profile, rows(rng, 5000, shift=0.5)) for _ in range(100)]
    assert sum(r.verdict == DRIFT for r in results) >= 99
    assert all("x0" in r.drifted for r in results)


def test_a_fifteen_point_shift_of_one_category_is_caught_at_5000_rows(profile):
    rng = np.random.default_rng(13)
    shifted = [0.25, 0.3, 0.2, 0.25]  # north loses 15 points, west gains them
    results = [verdict(profile, rows(rng, 5000, shares=shifted)) for _ in range(100)]
    assert sum("c0" in r.drifted for r in results) >= 99
    assert sum(r.verdict == DRIFT for r in results) >= 99  # c0 is among the three most important features


def test_a_harmless_shift_of_a_million_rows_is_not_drift(profile):
    result = verdict(profile, rows(np.random.default_rng(14), 1_000_000, shift=0.02))
    assert result.verdict == NO_DRIFT and result.drifted == []
    x0 = next(c for c in result.columns if c.name == "x0")
    # The p-value calls it significant; the effect sizes that decide do not.
    assert x0.statistic("ks_p_value").value < 1e-6
    assert x0.statistic("psi").value < 0.01 and x0.statistic("wasserstein_std").value < 0.05


def test_a_window_below_the_minimum_is_insufficient_data_not_drift(profile):
    result = verdict(profile, rows(np.random.default_rng(15), 500, shift=3.0))
    assert result.verdict == INSUFFICIENT and "500 rows" in result.reasons[0]


def test_half_the_features_drifting_is_drift_even_when_none_is_important(profile):
    frame = rows(np.random.default_rng(16), 5000)
    for name in NUMERIC[2:]:
        frame[name] += 1.0
    result = verdict(profile, frame)
    assert result.verdict == DRIFT and "8 of 15 features drifted" in result.reasons[0]


def test_predictions_drifting_make_the_window_drift():
    rng = np.random.default_rng(17)
    features = pd.DataFrame({"a": rng.normal(size=50_000)})
    outputs = pd.DataFrame({"prediction": rng.choice(["late", "on time"], 50_000, p=[0.2, 0.8])})
    profile = build_profile(features, ["a"], [], outputs=outputs)
    window = pd.DataFrame({"a": rng.normal(size=5000),
                           "prediction": rng.choice(["late", "on time"], 5000, p=[0.5, 0.5])})
    result = verdict(profile, window)
    assert result.verdict == DRIFT and "predictions drifted: prediction" in result.reasons[-1]


def test_per_column_thresholds_override_the_defaults(profile):
    frame = rows(np.random.default_rng(18), 5000, shift=0.5)
    policy = DriftPolicy(columns={"x0": {"wasserstein_drift": 0.9, "psi_drift": 5.0}})
    result = verdict(profile, frame, policy)
    assert "x0" not in result.drifted and result.verdict == NO_DRIFT


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shift=st.floats(-2, 2), missing=st.floats(0, 0.3))
def test_twenty_four_hourly_windows_merged_are_exactly_the_days_window(profile, seed, shift, missing):
    rng = np.random.default_rng(seed)
    day = rows(rng, 24 * 60, shift=shift)
    day.loc[rng.random(len(day)) < missing, "x3"] = np.nan
    day.loc[rng.random(len(day)) < missing, "c2"] = None
    hours = [count_window(profile, day.iloc[h * 60:(h + 1) * 60]) for h in range(24)]
    merged, whole = merge_windows(hours), count_window(profile, day)
    assert merged == whole
    assert check_drift(profile, merged).to_dict() == check_drift(profile, whole).to_dict()


def test_statistics_have_their_textbook_values():
    assert statistics.js_distance([10, 0], [0, 10]) == pytest.approx(1.0)
    assert statistics.js_distance([3, 7], [6, 14]) == pytest.approx(0.0)
    p, q = np.array([0.5, 0.5]), np.array([0.25, 0.75])
    assert statistics.psi([50, 50], [25, 75]) == pytest.approx(float(np.sum((q - p) * np.log(q / p))))
    assert statistics.largest_share_change([40, 30, 30], [25, 45, 30]) == pytest.approx(0.15)


def test_wasserstein_on_the_frozen_grid_measures_a_shift_in_reference_deviations(profile):
    for shift in (0.1, 0.5, 2.0, 25.0):  # 25 sigma lies far beyond the grid, in its geometric tail
        frame = rows(np.random.default_rng(19), 20_000, shift=shift)
        value = next(c for c in verdict(profile, frame).columns if c.name == "x0").statistic("wasserstein_std").value
        assert value == pytest.approx(shift, rel=0.15, abs=0.02)


def test_unseen_categories_are_counted_apart_and_can_decide(profile):
    frame = rows(np.random.default_rng(20), 5000)
    frame.loc[: len(frame) // 5, "c1"] = "mars"
    c1 = next(c for c in verdict(profile, frame).columns if c.name == "c1")
    assert c1.statistic("unseen_share").value == pytest.approx(0.2, abs=0.01) and c1.verdict == DRIFT


def test_a_profile_survives_json(profile):
    again = ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
    assert again == profile
