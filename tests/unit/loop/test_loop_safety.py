"""Loop safety, in a small simulated world on a fake clock.

A served model version has a reference profile built by the monitoring code from a sample of a synthetic
distribution. Every day a window of new rows is drawn from the stream (whose distribution may shift), the real drift
check judges it against the served reference, and the watch decides. A retrain trains a challenger on the stream as
it is then (its reference profile is the new distribution) with the holdout metric the scenario gives; the
comparison decides; a promotion serves the challenger and moves the reference. Every decision, retrain and
comparison goes through the loop's records in a real local store.

The properties: a drift that never stops retrains at most once per cooldown and never past the cap; a challenger
that is worse, tied or NaN is never promoted; fewer than k drifted windows among the last m never trigger (one
drifted day among clean ones does nothing); after a successful retrain on the new distribution the watch goes quiet;
windows with too few rows never count as drift; every decision is recorded with the checks it counted.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import pairwise

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.artifacts.local import LocalStore
from orchestrator.loop.compare import AWAIT_APPROVAL, DEPLOY, compare_by_rule, next_step
from orchestrator.loop.decide import (
    AWAITING_APPROVAL,
    DRIFT_NOT_SUSTAINED,
    INSUFFICIENT_DATA,
    NO_CHECKS,
    NO_DRIFT_CODE,
    CheckResult,
    Decision,
    Served,
    decide,
)
from orchestrator.loop.records import (
    claim_retrain,
    comparisons,
    decisions,
    record_comparison,
    record_decision,
    retrain_history,
    update_retrain,
)
from orchestrator.monitoring.check import DRIFT, INSUFFICIENT, check_drift
from orchestrator.monitoring.counts import count_window
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.monitoring.profile import ReferenceProfile, build_profile

DAY = timedelta(days=1)
START = datetime(2027, 1, 1, tzinfo=UTC)
TARGET = "sim"
LEVELS = np.array(["north", "south", "east", "west"])
SHARES = [0.4, 0.3, 0.2, 0.1]
REFERENCE_ROWS = 20_000
WINDOW_ROWS = 5000  # large enough that a window of the reference distribution never reads as drift
SMALL_WINDOW = 400  # under the default min_rows of 1000
SHIFT = 3.0  # in reference deviations: drift no check can miss
CHAMPION = 0.70  # the served model's AUC on each fresh holdout
QUIET_CODES = {NO_CHECKS, NO_DRIFT_CODE, INSUFFICIENT_DATA, DRIFT_NOT_SUSTAINED}
SIMULATION = settings(max_examples=12, deadline=None, derandomize=True,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def draw(mean: float, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Rows of the stream: ``x`` centred on ``mean``, the rest as in training."""
    return pd.DataFrame({"x": rng.normal(mean, 1.0, rows), "z": rng.normal(0.0, 1.0, rows),
                         "c": LEVELS[rng.choice(4, size=rows, p=SHARES)]})


@cache
def reference(mean: float) -> ReferenceProfile:
    """The reference profile of a model trained on the stream centred on ``mean`` (its training sample)."""
    sample = draw(mean, REFERENCE_ROWS, np.random.default_rng(round(mean * 1000) % 2**32))
    return build_profile(sample, ["x", "z"], ["c"], importance={"x": 0.5, "z": 0.3, "c": 0.2})


def loop_policy(*, windows: int = 3, drifted: int = 3, cooldown: int = 7, cap: str = "2 per 30d",
                approval: str = "auto") -> DriftPolicy:
    return DriftPolicy.model_validate({"watch": {"every": "1d", "windows": windows, "drifted": drifted},
                                       "retrain": {"cooldown": f"{cooldown}d", "max": cap, "approval": approval}})


@dataclass
class Retraining:
    number: int
    mean: float  # the distribution the challenger is trained on
    ends: datetime


@dataclass
class Outcome:
    """What the scenario says of one retrain: the challenger's holdout AUC and its checks (or that it failed)."""

    challenger: float = CHAMPION + 0.1
    parity: bool = True
    smoke: bool = True
    failed: bool = False


class World:
    """One served model, the stream, the watch and the loop's records, one day per step."""

    def __init__(self, store: LocalStore, policy: DriftPolicy, outcomes: Callable[[int], Outcome] = lambda n: Outcome(),
                 retrain_days: int = 0, seed: int = 0, first_mean: float = 0.0):
        self.store, self.policy, self.outcomes, self.retrain_days = store, policy, outcomes, retrain_days
        self.rng = np.random.default_rng(seed)
        self.served = Served("sim", 1, START)
        self.trained_on = {1: first_mean}
        self.checks: list[CheckResult] = []
        self.made: list[Decision] = []
        self.pending: Retraining | None = None
        self.now = START

    def run(self, means: list[float], rows: list[int] | None = None) -> World:
        for day, mean in enumerate(means):
            self.step(mean, rows[day] if rows else WINDOW_ROWS)
        return self

    def step(self, mean: float, rows: int) -> None:
        self.now += DAY
        self._finish_due()
        profile = reference(self.trained_on[self.served.version])
        result = check_drift(profile, count_window(profile, draw(mean, rows, self.rng)), self.policy)
        self.checks.append(CheckResult(f"day{len(self.checks) + 1:03d}-v{self.served.version}", self.now,
                                       result.verdict, result.rows, self.served.version, self.now))
        decision = decide(self.policy, self.now, self.served, self.checks, retrain_history(self.store, TARGET))
        decision = record_decision(self.store, TARGET, decision)
        self.made.append(decision)
        if decision.retrains:
            retrain = claim_retrain(self.store, TARGET, decision)
            assert retrain is not None, "nobody else decides in this world: the claim is ours"
            self.pending = Retraining(retrain.number, mean, self.now + self.retrain_days * DAY)
            self._finish_due()

    def _finish_due(self) -> None:
        if self.pending is None or self.pending.ends > self.now:
            return
        job, self.pending = self.pending, None
        outcome = self.outcomes(job.number)
        if outcome.failed:
            update_retrain(self.store, TARGET, job.number, "failed", job.ends, reason="the run failed")
            return
        comparison = compare_by_rule(self.policy.retrain.challenger, {"roc_auc": CHAMPION, "rows": 800},
                                     {"roc_auc": outcome.challenger, "rows": 800}, task="classification",
                                     classes=2, parity_passed=outcome.parity, smoke_passed=outcome.smoke,
                                     champion=f"sim:{self.served.version}", challenger=f"sim:{job.number + 1}")
        comparison = record_comparison(self.store, TARGET, comparison, job.ends)
        step = next_step(comparison, self.policy.retrain.approval)
        if step == DEPLOY:
            version = max(self.trained_on) + 1
            self.trained_on[version] = job.mean
            self.served = Served("sim", version, job.ends)
            update_retrain(self.store, TARGET, job.number, "promoted", job.ends, comparison_id=comparison.id)
        elif step == AWAIT_APPROVAL:  # nobody approves in this world
            update_retrain(self.store, TARGET, job.number, "awaiting_approval", job.ends, comparison_id=comparison.id)
        else:
            update_retrain(self.store, TARGET, job.number, "rejected", job.ends, comparison_id=comparison.id)

    # ---- what the world shows ----------------------------------------------------------------------------------
    @property
    def retrains(self):
        return retrain_history(self.store, TARGET)

    def check(self, check_id: str) -> CheckResult:
        return next(c for c in self.checks if c.id == check_id)


def assert_every_decision_is_recorded_with_the_checks_it_counted(world: World) -> None:
    kept = decisions(world.store, TARGET)
    assert kept == world.made and len(kept) == len(world.checks)
    policy, k = world.policy, world.policy.watch.drifted
    oldest = timedelta(days=policy.watch.windows)
    for decision in kept:
        assert decision.id and decision.reason
        counted = [world.check(i) for i in decision.check_ids]
        assert all(c.version == decision.version and decision.decided_at - oldest < c.window_end
                   <= decision.decided_at for c in counted)
        assert set(decision.drifted_ids) <= set(decision.check_ids)
        assert all(world.check(i).verdict == DRIFT and world.check(i).rows >= policy.min_rows
                   for i in decision.drifted_ids)
        assert (len(decision.drifted_ids) < k) == (decision.code in QUIET_CODES)
    started = [d.retrain for d in kept if d.retrains]
    assert started == [r.number for r in world.retrains] == list(range(1, len(started) + 1))


def assert_one_at_a_time_after_each_cooldown_and_under_the_cap(world: World) -> None:
    retrain = world.policy.retrain
    cooldown, period = timedelta(seconds=retrain.cooldown_s), timedelta(seconds=retrain.max_period_s)
    history = world.retrains
    for before, after in pairwise(history):
        assert before.finished is not None and after.started >= before.finished + cooldown
    starts = [r.started for r in history]
    assert all(sum(1 for s in starts if start - period < s <= start) <= retrain.max_count for start in starts)


def shifted_days(pattern: list[bool]) -> list[float]:
    return [SHIFT if shifted else 0.0 for shifted in pattern]


def fewer_than_k_in_every_m(flags: list[bool], k: int, m: int) -> list[bool]:
    """``flags`` with days cleared so that no m consecutive days hold k set ones."""
    kept: list[bool] = []
    for flag in flags:
        recent = sum(kept[-(m - 1):]) if m > 1 else 0
        kept.append(flag and recent + 1 < k)
    return kept


# ---- the properties ---------------------------------------------------------------------------------------------
@SIMULATION
@given(cooldown=st.integers(1, 6), cap=st.integers(1, 3), period=st.integers(3, 20), retrain_days=st.integers(0, 2),
       days=st.integers(4, 30), windows=st.integers(1, 3), data=st.data())
def test_a_drift_that_never_stops_retrains_at_most_once_per_cooldown_and_never_past_the_cap(
        cooldown, cap, period, retrain_days, days, windows, data):
    drifted = data.draw(st.integers(1, windows), label="drifted")
    wins = data.draw(st.lists(st.booleans(), min_size=days, max_size=days), label="challenger wins")
    policy = loop_policy(windows=windows, drifted=drifted, cooldown=cooldown, cap=f"{cap} per {period}d")
    # The stream moves on every day, away from every reference, the newest included.
    means = [2.0 * (day + 1) for day in range(days)]
    with tempfile.TemporaryDirectory() as folder:
        world = World(LocalStore(folder), policy, lambda n: Outcome(CHAMPION + (0.1 if wins[n - 1] else -0.1)),
                      retrain_days).run(means)
        history = world.retrains
        assert 1 <= len(history) <= math.ceil(days / cooldown)
        assert len(history) <= cap * math.ceil(days / period)
        assert_one_at_a_time_after_each_cooldown_and_under_the_cap(world)
        assert_every_decision_is_recorded_with_the_checks_it_counted(world)


challenger_that_must_lose = st.one_of(
    st.builds(Outcome, st.floats(0.3, CHAMPION)),  # worse, or tied
    st.builds(Outcome, st.just(math.nan)),
    st.builds(Outcome, st.floats(CHAMPION, CHAMPION + 0.0049)),  # better, but by less than the margin
    st.builds(Outcome, st.floats(0.8, 0.99), st.sampled_from([False, True]), st.just(False)),  # no smoke test
    st.builds(Outcome, st.floats(0.8, 0.99), st.just(False)),  # no ONNX parity
    st.builds(Outcome, failed=st.just(True)),
)


@SIMULATION
@given(losers=st.lists(challenger_that_must_lose, min_size=10, max_size=10), shift_day=st.integers(0, 3),
       cooldown=st.integers(1, 3), retrain_days=st.integers(0, 1), seed=st.integers(0, 2**16))
def test_a_challenger_that_is_worse_tied_nan_or_unchecked_is_never_promoted(losers, shift_day, cooldown,
                                                                             retrain_days, seed):
    policy = loop_policy(cooldown=cooldown, cap="10 per 30d")
    means = shifted_days([day >= shift_day for day in range(18)])
    with tempfile.TemporaryDirectory() as folder:
        world = World(LocalStore(folder), policy, lambda n: losers[n - 1], retrain_days, seed).run(means)
        assert len(world.retrains) >= 2, "the drift persists: the loop keeps trying, and keeps the champion"
        assert world.served.version == 1 and set(world.trained_on) == {1}
        ended = [r for r in world.retrains if not r.in_flight]
        assert len(ended) >= len(world.retrains) - 1 and {r.outcome for r in ended} <= {"rejected", "failed"}
        assert all(not c.challenger_wins for c in comparisons(world.store, TARGET))
        assert_every_decision_is_recorded_with_the_checks_it_counted(world)


@SIMULATION
@given(windows=st.integers(1, 4), data=st.data(), seed=st.integers(0, 2**16))
def test_fewer_than_k_drifted_windows_among_the_last_m_never_trigger_a_retrain(windows, data, seed):
    drifted = data.draw(st.integers(1, windows), label="drifted")
    flags = data.draw(st.lists(st.booleans(), min_size=windows, max_size=16), label="shifted days")
    pattern = fewer_than_k_in_every_m(flags, drifted, windows)
    policy = loop_policy(windows=windows, drifted=drifted, cooldown=1)
    with tempfile.TemporaryDirectory() as folder:
        world = World(LocalStore(folder), policy, seed=seed).run(shifted_days(pattern))
        # The check sees every shifted day, and only those...
        assert [c.verdict == DRIFT for c in world.checks] == pattern
        # ...and the watch never retrains on them.
        assert world.retrains == [] and not any(d.retrains for d in world.made)
        assert_every_decision_is_recorded_with_the_checks_it_counted(world)


def test_one_drifted_day_among_clean_ones_triggers_nothing_under_the_default_policy(tmp_path):
    pattern = [False] * 5 + [True] + [False] * 5
    world = World(LocalStore(tmp_path / "store"), DriftPolicy(), seed=3).run(shifted_days(pattern))
    assert [c.verdict == DRIFT for c in world.checks] == pattern
    assert world.retrains == []
    assert [d.code for d in world.made[5:8]] == [DRIFT_NOT_SUSTAINED] * 3
    assert world.made[5].drifted_ids == ("day006-v1",)
    assert world.made[8].code == NO_DRIFT_CODE


@SIMULATION
@given(windows=st.integers(1, 3), data=st.data(), cooldown=st.integers(1, 3), retrain_days=st.integers(0, 2),
       shift_day=st.integers(0, 3), seed=st.integers(0, 2**16))
def test_after_a_successful_retrain_on_the_new_distribution_the_watch_goes_quiet(windows, data, cooldown,
                                                                                retrain_days, shift_day, seed):
    drifted = data.draw(st.integers(1, windows), label="drifted")
    policy = loop_policy(windows=windows, drifted=drifted, cooldown=cooldown, cap="5 per 30d")
    days = shift_day + windows + retrain_days + 12
    means = shifted_days([day >= shift_day for day in range(days)])
    with tempfile.TemporaryDirectory() as folder:
        world = World(LocalStore(folder), policy, retrain_days=retrain_days, seed=seed).run(means)
        [retrain] = world.retrains
        assert retrain.outcome == "promoted" and world.served == Served("sim", 2, retrain.finished)
        assert world.trained_on[2] == SHIFT, "the new reference is the new distribution"
        after = [d for d in world.made if d.decided_at > retrain.finished]
        assert len(after) >= 10 and all(d.version == 2 and d.code in (NO_CHECKS, NO_DRIFT_CODE) for d in after)
        # The old version's drifted windows, still within the last m days at the promotion, never counted again.
        assert all(world.check(i).version == 2 for d in after for i in d.check_ids)
        assert after[-1].code == NO_DRIFT_CODE
        assert_every_decision_is_recorded_with_the_checks_it_counted(world)


@SIMULATION
@given(windows=st.integers(1, 4), data=st.data(), seed=st.integers(0, 2**16))
def test_windows_with_too_few_rows_never_count_as_drift(windows, data, seed):
    drifted = data.draw(st.integers(1, windows), label="drifted")
    flags = data.draw(st.lists(st.booleans(), min_size=windows, max_size=16), label="full days")
    full = fewer_than_k_in_every_m(flags, drifted, windows)
    policy = loop_policy(windows=windows, drifted=drifted, cooldown=1)
    rows = [WINDOW_ROWS if f else SMALL_WINDOW for f in full]
    # Every day has drifted, but only the full days can say so.
    with tempfile.TemporaryDirectory() as folder:
        world = World(LocalStore(folder), policy, seed=seed).run([SHIFT] * len(full), rows)
        assert [c.verdict for c in world.checks] == [DRIFT if f else INSUFFICIENT for f in full]
        assert world.retrains == []
        small = {c.id for c in world.checks if c.rows < policy.min_rows}
        assert all(not small & set(d.drifted_ids) for d in world.made)
        assert_every_decision_is_recorded_with_the_checks_it_counted(world)


def test_a_winning_challenger_waits_for_approval_under_manual_approval_and_blocks_the_next_retrain(tmp_path):
    world = World(LocalStore(tmp_path / "store"), loop_policy(approval="manual", cooldown=1), seed=5)
    world.run(shifted_days([True] * 8))
    [retrain] = world.retrains
    assert (retrain.outcome, retrain.finished, world.served.version) == ("awaiting_approval", None, 1)
    assert comparisons(world.store, TARGET)[0].challenger_wins
    # The drift goes on against the champion, and the challenger waiting for a person holds every retrain back.
    assert [d.code for d in world.made[3:]] == [AWAITING_APPROVAL] * 5
    assert all(d.retrain == 1 for d in world.made[3:])
