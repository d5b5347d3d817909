"""The loop's records in the artifact store: decisions and comparisons created once and read back in order, a
retrain claimed create-only (two runners deciding on the same history start one retrain), and the decision's inputs
read from the drift checks exactly as ``dataops drift check`` stores them."""

from __future__ import annotations

import datetime as dt
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.artifacts.local import LocalStore
from orchestrator.errors import ArtifactNotFound
from orchestrator.loop.compare import compare_models
from orchestrator.loop.decide import (
    COOLDOWN,
    NO_CHECKS,
    RETRAIN,
    RETRAIN_RUNNING,
    CheckResult,
    Retrain,
    Served,
    decide,
)
from orchestrator.loop.records import (
    RetrainConflict,
    claim_retrain,
    comparisons,
    decisions,
    latest_comparison,
    latest_decision,
    load_retrain,
    loop_prefix,
    record_comparison,
    record_decision,
    retrain_history,
    update_retrain,
)
from orchestrator.loop.state import check_results, decide_from_store, watch_inputs
from orchestrator.monitoring.policy import DriftPolicy

NOW = datetime(2027, 3, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
SERVED = Served("flights", 2)


def retrain_decision(at: datetime = NOW, history=()):
    checks = [CheckResult(f"c{d}", at - d * DAY, "drift", 5000, 2) for d in range(3)]
    return decide(DriftPolicy(), at, SERVED, checks, list(history))


def test_every_decision_is_kept_once_with_its_checks_and_read_back_oldest_first(store):
    quiet = decide(DriftPolicy(), NOW - DAY, SERVED, [], [])
    first = record_decision(store, "flights-ep", quiet)
    second = record_decision(store, "flights-ep", retrain_decision())
    assert first.id.startswith("20270327T120000.000000Z-") and second.id.startswith("20270328T120000.000000Z-")
    assert store.exists(f"monitoring/flights-ep/loop/decisions/{second.id}.json")
    kept = decisions(store, "flights-ep")
    assert [d.code for d in kept] == [NO_CHECKS, RETRAIN]
    assert kept[1] == second and kept[1].check_ids == ("c0", "c1", "c2") and kept[1].decided_at == NOW
    assert latest_decision(store, "flights-ep") == second
    assert decisions(store, "flights-ep", limit=1) == [second]
    assert latest_decision(store, "other") is None
    stored = json.loads(store.get_bytes(f"monitoring/flights-ep/loop/decisions/{second.id}.json"))
    assert stored["format"] == "dataops.loop-decision/1" and stored["decided_at"] == "2027-03-28T12:00:00.000000Z"


def test_a_decision_with_an_until_reads_back_with_it(store):
    finished = NOW - DAY
    history = [Retrain(1, finished - DAY, finished, "rejected")]
    cooling = record_decision(store, "ep", retrain_decision(history=history))
    assert cooling.code == COOLDOWN and latest_decision(store, "ep").until == finished + 7 * DAY


def test_a_target_that_would_leave_its_folder_is_refused(store):
    for bad in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(ValueError, match="invalid watch target"):
            loop_prefix(bad)


def test_comparisons_are_kept_with_every_number_and_unusable_values_as_null(store):
    first = compare_models({"roc_auc": 0.8, "rows": 500}, {"roc_auc": float("nan"), "rows": 500}, metric="roc_auc",
                           margin=0.005, parity_passed=True, smoke_passed=True, champion="flights:1",
                           challenger="flights:2", holdout={"rows": 500, "since": "2027-03-01"})
    kept = record_comparison(store, "ep", first, NOW)
    second = record_comparison(store, "ep", compare_models({"rmse": 3.0}, {"rmse": 2.0}, metric="rmse", margin=0.1,
                                                           parity_passed=True, smoke_passed=True), NOW + DAY)
    assert [c.id for c in comparisons(store, "ep")] == [kept.id, second.id]
    assert latest_comparison(store, "ep") == second and comparisons(store, "ep")[0] == kept
    stored = json.loads(store.get_bytes(f"monitoring/ep/loop/comparisons/{kept.id}.json"))
    assert stored["challenger_value"] is None and stored["champion_value"] == 0.8
    assert stored["format"] == "dataops.loop-comparison/1" and stored["compared_at"] == "2027-03-28T12:00:00.000000Z"
    assert stored["holdout"] == {"rows": 500, "since": "2027-03-01"} and stored["winner"] == "champion"


def test_a_recorded_retrain_decision_claims_its_retrain_once(store):
    decision = record_decision(store, "ep", retrain_decision())
    retrain = claim_retrain(store, "ep", decision, {"run_id": "run-1"})
    assert (retrain.number, retrain.outcome, retrain.started, retrain.finished) == (1, "running", NOW, None)
    assert retrain.decision_id == decision.id and retrain.details == {"run_id": "run-1"}
    assert claim_retrain(store, "ep", decision) is None
    assert retrain_history(store, "ep") == [retrain]


def test_of_runners_deciding_at_once_on_the_same_history_exactly_one_starts_a_retrain(tmp_path):
    store = LocalStore(tmp_path / "store")
    runners = [record_decision(store, "ep", retrain_decision()) for _ in range(8)]
    assert {d.retrain for d in runners} == {1}
    started, barrier = [], threading.Barrier(len(runners))

    def run(decision):
        barrier.wait()
        started.append(claim_retrain(LocalStore(tmp_path / "store"), "ep", decision))

    threads = [threading.Thread(target=run, args=(d,)) for d in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r is not None for r in started) == 1
    assert len(retrain_history(store, "ep")) == 1


def test_only_a_recorded_retrain_decision_starts_a_retrain(store):
    with pytest.raises(RetrainConflict, match="only a recorded retrain decision"):
        claim_retrain(store, "ep", retrain_decision())  # not recorded
    quiet = record_decision(store, "ep", decide(DriftPolicy(), NOW, SERVED, [], []))
    with pytest.raises(RetrainConflict, match="'no_checks'"):
        claim_retrain(store, "ep", quiet)


def test_a_retrain_moves_through_approval_to_one_final_outcome(store):
    decision = record_decision(store, "ep", retrain_decision())
    claim_retrain(store, "ep", decision, {"run_id": "run-1"})
    waiting = update_retrain(store, "ep", 1, "awaiting_approval", NOW + DAY, challenger="flights:3")
    assert (waiting.outcome, waiting.finished, waiting.in_flight) == ("awaiting_approval", None, True)
    done = update_retrain(store, "ep", 1, "promoted", NOW + 2 * DAY, comparison_id="c-1")
    assert (done.outcome, done.finished, done.in_flight) == ("promoted", NOW + 2 * DAY, False)
    assert done.details == {"run_id": "run-1", "challenger": "flights:3", "comparison_id": "c-1"}
    assert load_retrain(store, "ep", 1) == done
    with pytest.raises(RetrainConflict, match="already ended as promoted"):
        update_retrain(store, "ep", 1, "failed", NOW + 3 * DAY)
    with pytest.raises(ValueError, match="not 'running'"):
        update_retrain(store, "ep", 1, "running", NOW)
    with pytest.raises(ArtifactNotFound, match="no retrain 2 of ep"):
        update_retrain(store, "ep", 2, "failed", NOW)


def test_the_decision_read_from_the_store_sees_the_retrain_in_flight_then_its_cooldown(store):
    decision = record_decision(store, "ep", retrain_decision())
    claim_retrain(store, "ep", decision)
    # The served version's checks, stored as the drift check stores them.
    for d in range(3):
        write_check(store, "flights", 2, NOW + DAY - d * DAY, "drift", 4000)
    later = NOW + DAY + timedelta(minutes=5)
    assert decide_from_store(store, "ep", SERVED, DriftPolicy(), later).code == RETRAIN_RUNNING
    update_retrain(store, "ep", 1, "rejected", NOW + DAY)
    cooling = decide_from_store(store, "ep", SERVED, DriftPolicy(), later)
    assert (cooling.code, cooling.until) == (COOLDOWN, NOW + 8 * DAY)
    assert len(cooling.check_ids) == 3


def write_check(store, model: str, version: int, until: datetime, verdict: str, rows: int) -> str:
    """A check record in the layout and format of orchestrator/usecases/drift.py (``dataops.drift-check/1``)."""
    check_id = until.strftime("%Y%m%d-%H%M%S.%f-") + "ab12"
    record = {"format": "dataops.drift-check/1", "check_id": check_id, "checked_at": iso(until), "verdict": verdict,
              "window": {"kind": "time", "since": iso(until - DAY), "until": iso(until), "rows": rows},
              "lineage": {"model": {"name": model, "version": version, "sha256": "0" * 64}, "endpoint": None},
              "result": {"verdict": verdict, "rows": rows}}
    store.put_bytes(f"monitoring/{model}/{version}/checks/{check_id}/result.json", json.dumps(record).encode())
    return check_id


def iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_old_checks_are_not_even_read_and_other_versions_are_not_looked_at(store):
    old = write_check(store, "flights", 2, NOW - 10 * DAY, "drift", 4000)
    recent = write_check(store, "flights", 2, NOW, "drift", 4000)
    write_check(store, "flights", 1, NOW, "drift", 4000)
    assert [c.id for c in check_results(store, "flights", 2)] == [old, recent]
    inputs = watch_inputs(store, "ep", SERVED, DriftPolicy(), NOW)
    assert [c.id for c in inputs.checks] == [recent] and inputs.retrains == []
    assert [c.version for c in check_results(store, "flights", 1)] == [1]


# ---- the checks dataops drift check really writes -------------------------------------------------------------
@pytest.fixture(scope="module")
def watched_model(tmp_path_factory):
    """A registered classifier with its reference profile (windows of at least 300 rows), in a local store."""
    from tests.support.tiny_models import registered_profiled_model

    return registered_profiled_model(tmp_path_factory.mktemp("loop-checks"))


def capture(store, folder, card, rows, at: dt.datetime, sequence: int) -> None:
    """``rows`` captured by the server at ``at``: inputs, label and probabilities, in the store's captures/."""
    from orchestrator.ml.score import score_partition
    from orchestrator.serving.capture import StoreCaptureWriter
    from tests.support.tiny_models import CATEGORICAL, NUMERIC

    scored = score_partition(rows, (folder / "model.onnx").read_bytes(), card, 1)
    lines = [json.dumps({"ts": at.isoformat(), "model": "tiny", "version": 1, "request_id": None,
                         "inputs": {name: record[name] for name in NUMERIC + CATEGORICAL},
                         "outputs": {"label": record["prediction"],
                                     "probabilities": [record["proba_0"], record["proba_1"]]}})
             for record in json.loads(scored.to_json(orient="records"))]
    key = f"tiny/1/{at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S%f}Z-7-{sequence:06d}.jsonl"
    StoreCaptureWriter(store, "captures").write(key, ("\n".join(lines) + "\n").encode())


def test_the_decision_reads_the_checks_the_drift_check_stores_and_retrains_on_three_drifted_days(watched_model):
    from orchestrator.usecases.drift import check_model_drift
    from tests.support.tiny_models import synthetic_frame

    store, folder, card = watched_model
    start = datetime(2027, 3, 1, tzinfo=UTC)
    made = []
    for day in range(4):
        rows, _ = synthetic_frame(400 if day else 100, 30 + day)  # the first day is too small to judge
        if day:
            rows["dep_hour"] = (rows["dep_hour"] + 8).clip(upper=23)  # the evening flights arrive
        capture(store, folder, card, rows, start + day * DAY + timedelta(hours=12), day)
        end = start + (day + 1) * DAY
        made.append(check_model_drift("tiny:1", window="24h", store=str(store.root), now=end))
    assert [c.result.verdict for c in made] == ["insufficient_data", "drift", "drift", "drift"]

    read = check_results(store, "tiny", 1)
    assert [c.id for c in read] == [c.record["check_id"] for c in made]
    assert [(c.verdict, c.rows, c.version) for c in read] == [("insufficient_data", 100, 1), ("drift", 400, 1),
                                                              ("drift", 400, 1), ("drift", 400, 1)]
    assert [c.window_end for c in read] == [start + (d + 1) * DAY for d in range(4)]

    policy = DriftPolicy(min_rows=300)
    now = start + 4 * DAY
    decision = record_decision(store, "tiny", decide_from_store(store, "tiny", Served("tiny", 1), policy, now))
    assert decision.action == RETRAIN
    assert decision.drifted_ids == tuple(c.record["check_id"] for c in reversed(made[1:]))
    assert latest_decision(store, "tiny").drifted_ids == decision.drifted_ids
    # A day earlier, the too-small first day was among the last three: two drifted windows are not enough.
    earlier = decide_from_store(store, "tiny", Served("tiny", 1), policy, now - DAY)
    assert earlier.code == "drift_not_sustained" and made[0].record["check_id"] in earlier.check_ids
    # Once version 2 serves, version 1's drifted windows say nothing.
    assert decide_from_store(store, "tiny", Served("tiny", 2), policy, now).code == NO_CHECKS
