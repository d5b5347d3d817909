"""The pipeline file's ``monitoring:`` section: the drift policy saved with the model, checked like every other
section (file:line, the field, what was expected, the closest valid name)."""

from __future__ import annotations

import pytest

from orchestrator.errors import SpecError
from orchestrator.monitoring.policy import DriftPolicy
from orchestrator.pipeline.spec import load_pipeline
from tests.support.monitored_pipeline import line_with, pipeline_with_monitoring


def test_a_pipeline_without_a_monitoring_section_gets_the_default_policy(tmp_path):
    assert load_pipeline(pipeline_with_monitoring(tmp_path)).spec.monitoring == DriftPolicy()


def test_the_monitoring_section_sets_thresholds_per_kind_and_per_column(tmp_path):
    path = pipeline_with_monitoring(tmp_path, """
monitoring:
  min_rows: 500
  top_features: 2
  numeric: {psi_drift: 0.3}
  categorical: {js_drift: 0.2}
  columns:
    amount: {wasserstein_drift: 0.05}
    notes: {ignore: true}
""")
    policy = load_pipeline(path).spec.monitoring
    assert (policy.min_rows, policy.top_features) == (500, 2)
    assert policy.threshold("distance", "psi_drift") == 0.3
    assert policy.threshold("carrier", "js_drift") == 0.2
    assert policy.threshold("amount", "wasserstein_drift") == 0.05
    assert policy.threshold("distance", "wasserstein_drift") == DriftPolicy().numeric.wasserstein_drift
    assert policy.ignored("notes") and not policy.ignored("amount")


def test_a_misspelt_monitoring_field_names_its_line_and_the_closest_field(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  min_row: 500\n")
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    assert (f"{path}:{line_with(path, 'min_row')}: unknown field 'monitoring.min_row' (did you mean 'min_rows'?)"
            in str(caught.value))


def test_a_misspelt_threshold_of_one_column_is_compared_with_the_column_overrides(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  columns:\n    amount: {psi_drfit: 0.2}\n")
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    assert (f"{path}:{line_with(path, 'psi_drfit')}: unknown field 'monitoring.columns.amount.psi_drfit' "
            f"(did you mean 'psi_drift'?)") in str(caught.value)


def test_an_out_of_range_monitoring_value_names_its_line_field_and_bound(tmp_path):
    path = pipeline_with_monitoring(tmp_path, "monitoring:\n  drift_share: 1.5\n")
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    message = str(caught.value)
    assert f"{path}:{line_with(path, 'drift_share')}: monitoring.drift_share:" in message
    assert "less than or equal to 1" in message
