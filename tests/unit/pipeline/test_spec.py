"""A pipeline file with a mistake is refused with the file, the line, the field, what was expected and a suggestion."""

import pytest

from orchestrator.errors import SpecError
from orchestrator.pipeline.spec import load_pipeline
from tests.conftest import write

VALID = """
name: shop
sources:
  orders:
    location: orders.csv
    validation:
      columns:
        amount: {type: float, min: 0}
split:
  by: hash
  column: order_id
  fractions: {train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}
"""


def test_a_valid_file_loads(tmp_path):
    loaded = load_pipeline(write(tmp_path / "p.yaml", VALID))
    assert loaded.spec.sources["orders"].resolved_format == "csv"
    assert len(loaded.sha256) == 64


def test_a_misspelt_field_names_file_line_field_and_the_closest_name(tmp_path):
    path = write(tmp_path / "p.yaml", VALID.replace("    location: orders.csv", "    locaton: orders.csv"))
    with pytest.raises(SpecError) as caught:
        load_pipeline(path)
    message = str(caught.value)
    assert f"{path}:4: unknown field 'sources.orders.locaton' (did you mean 'location'?)" in message
    assert f"{path}:3: field 'sources.orders.location' is required" in message


def test_a_wrong_choice_lists_the_valid_ones_and_suggests(tmp_path):
    path = write(tmp_path / "p.yaml", VALID.replace("by: hash", "by: hsah"))
    with pytest.raises(SpecError, match=r"p.yaml:9: field 'split.by': got 'hsah', expected 'time' or 'hash' \(did you mean 'hash'\?\)"):
        load_pipeline(path)


def test_a_rule_with_a_misspelt_key_points_at_its_line(tmp_path):
    path = write(tmp_path / "p.yaml", VALID.replace("{type: float, min: 0}", "{type: float, mni: 0}"))
    with pytest.raises(SpecError, match=r"p.yaml:7: unknown field 'sources.orders.validation.columns.amount.mni' \(did you mean 'min'\?\)"):
        load_pipeline(path)


def test_an_unknown_source_in_a_join_is_named_with_a_suggestion(tmp_path):
    text = VALID.replace("split:", "blend:\n  base: order\nsplit:")
    path = write(tmp_path / "p.yaml", text)
    with pytest.raises(SpecError, match=r"p.yaml:9: field 'blend.base': unknown source 'order' \(did you mean 'orders'\?\)"):
        load_pipeline(path)


def test_fractions_must_sum_to_one(tmp_path):
    path = write(tmp_path / "p.yaml", VALID.replace("serve: 0.1}", "serve: 0.3}"))
    with pytest.raises(SpecError, match="fractions must sum to 1"):
        load_pipeline(path)


def test_broken_yaml_names_the_line(tmp_path):
    path = write(tmp_path / "p.yaml", "name: x\nsources: [\n")
    with pytest.raises(SpecError, match=r"p.yaml:\d+: not valid YAML"):
        load_pipeline(path)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SpecError, match="cannot read the pipeline file"):
        load_pipeline(tmp_path / "absent.yaml")
