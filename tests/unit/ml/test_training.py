import pytest

from orchestrator.errors import StageFailed
from orchestrator.ml.features import describe_frame
from orchestrator.ml.train import fit_model
from ml_data import make_spec


def test_tuning_records_every_candidate_with_its_cross_validation_scores(partitions):
    spec = make_spec(tuning={"strategy": "grid", "space": {"C": [0.01, 0.1, 1.0]}, "cv": 2, "finalists": 2})
    result = fit_model(spec, partitions["train"], partitions["validation"])
    assert sorted(c["params"]["C"] for c in result.candidates) == [0.01, 0.1, 1.0]
    assert all(len(c["cv_scores"]) == 2 for c in result.candidates)
    assert result.scoring == "roc_auc"


def test_the_model_is_chosen_among_finalists_by_its_validation_score(partitions):
    spec = make_spec(tuning={"strategy": "grid", "space": {"C": [0.001, 0.1, 10.0]}, "cv": 2, "finalists": 3})
    result = fit_model(spec, partitions["train"], partitions["validation"])
    finalists = [c for c in result.candidates if "validation_score" in c]
    chosen = [c for c in finalists if c["chosen"]]
    assert len(finalists) == 3 and len(chosen) == 1
    assert chosen[0]["validation_score"] == max(c["validation_score"] for c in finalists) == result.best_score
    assert result.best_params == chosen[0]["params"]
    assert result.model.named_steps["estimator"].C == result.best_params["C"]


def test_the_tuner_records_fingerprints_of_train_and_validation_only(partitions):
    """The run record proves which rows the tuner saw: exactly the train and validation frames it was given."""
    spec = make_spec(tuning={"space": {"C": [0.1, 1.0]}, "cv": 2})
    result = fit_model(spec, partitions["train"], partitions["validation"])
    assert set(result.data) == {"train", "validation"}
    assert result.data["train"] == describe_frame(partitions["train"])
    assert result.data["validation"] == describe_frame(partitions["validation"])
    seen = {info["fingerprint"] for info in result.data.values()}
    assert describe_frame(partitions["test"])["fingerprint"] not in seen
    assert describe_frame(partitions["serve"])["fingerprint"] not in seen
    assert result.record()["data"] == result.data


def test_progress_reports_candidates_done_of_total_and_the_best_score_so_far(partitions):
    calls = []
    spec = make_spec(tuning={"strategy": "random", "space": {"C": {"loguniform": [0.01, 10]}}, "n_iter": 3, "cv": 2})
    fit_model(spec, partitions["train"], partitions["validation"], on_progress=lambda *a: calls.append(a))
    assert calls[0] == (0, 3, None)
    assert [c[:2] for c in calls[1:]] == [(1, 3), (2, 3), (3, 3)]
    bests = [c[2] for c in calls[1:]]
    assert bests == sorted(bests)


def test_random_search_draws_n_iter_candidates_from_distributions(partitions):
    spec = make_spec("sklearn.ensemble.RandomForestClassifier",
                     tuning={"strategy": "random", "n_iter": 3, "cv": 2,
                             "space": {"n_estimators": {"randint": [3, 6]}, "max_depth": [3, 5]}})
    result = fit_model(spec, partitions["train"], partitions["validation"])
    assert len(result.candidates) == 3
    assert all(3 <= c["params"]["n_estimators"] <= 6 for c in result.candidates)


def test_successive_halving_records_each_round(partitions):
    spec = make_spec("sklearn.ensemble.HistGradientBoostingRegressor", task="regression",
                     tuning={"strategy": "halving", "space": {"max_iter": [5, 10, 20]}, "cv": 2, "finalists": 1})
    result = fit_model(spec, partitions["train"], partitions["validation"])
    rounds = {c["halving_round"] for c in result.candidates}
    assert rounds == {0, 1}
    assert result.scoring == "neg_root_mean_squared_error"


def test_without_tuning_the_fixed_parameters_are_fitted_and_scored_on_validation(partitions):
    spec = make_spec(params={"C": 0.3})
    result = fit_model(spec, partitions["train"], partitions["validation"])
    assert result.model.named_steps["estimator"].C == 0.3
    assert result.candidates == [{"params": {"C": 0.3}, "validation_score": result.best_score, "chosen": True}]


def test_a_single_class_target_is_a_clear_error(partitions):
    train = partitions["train"].assign(delayed=True)
    with pytest.raises(StageFailed, match="single class"):
        fit_model(make_spec(), train, partitions["validation"])
