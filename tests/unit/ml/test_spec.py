import pytest
from pydantic import ValidationError

from orchestrator.ml.spec import ModelSpec

from ml_data import make_spec


def test_a_minimal_model_section_gets_preprocessing_defaults_users_expect():
    spec = make_spec()
    assert spec.preprocessing.numeric_impute == "median"
    assert spec.preprocessing.one_hot is True
    assert spec.parity_tolerance == 1e-4
    assert spec.features.all == ["dep_hour", "distance", "carrier"]


def test_unknown_fields_are_rejected_with_their_name():
    with pytest.raises(ValidationError, match="estimatr"):
        make_spec(estimatr="x")


def test_an_estimator_that_cannot_be_imported_is_a_field_error_naming_it():
    with pytest.raises(ValidationError, match="has no estimator 'NoSuchModel'"):
        make_spec("sklearn.ensemble.NoSuchModel")


def test_the_target_may_not_also_be_a_feature():
    with pytest.raises(ValidationError, match="also listed as a feature"):
        ModelSpec.model_validate({
            "name": "m", "task": "classification", "target": "carrier",
            "features": {"categorical": ["carrier"]}, "estimator": "sklearn.linear_model.LogisticRegression"})


def test_a_search_space_must_hold_lists_or_known_distributions():
    with pytest.raises(ValidationError, match="parameter 'C'"):
        make_spec(tuning={"space": {"C": {"normal": [0, 1]}}})
    with pytest.raises(ValidationError, match="empty"):
        make_spec(tuning={"space": {}})


def test_tree_estimators_are_recognised_so_numerics_are_not_scaled():
    assert make_spec("sklearn.ensemble.RandomForestClassifier").is_tree_based
    assert not make_spec().is_tree_based
