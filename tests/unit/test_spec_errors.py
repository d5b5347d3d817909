"""One spec-error formatter for pipeline, cluster and endpoint files alike: every mistake is reported as
``file:line: field: message``, and a misspelt field or choice names the closest valid one."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from orchestrator.clusters.spec import load_cluster_spec
from orchestrator.deploy.spec import load_endpoint_spec
from orchestrator.errors import SpecError
from orchestrator.yaml_files import read_mapping, spec_error, suggest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _copy_with(tmp_path: Path, example: str, old: str, new: str) -> tuple[Path, int]:
    """The example file with one line changed, and the number of that line."""
    text = (EXAMPLES / example).read_text()
    assert old in text, f"the example {example} no longer holds {old!r}"
    path = tmp_path / Path(example).name
    path.write_text(text.replace(old, new, 1))
    line = next(n for n, row in enumerate(path.read_text().splitlines(), 1) if new.strip() in row)
    return path, line


def _message(load, path: Path) -> str:
    with pytest.raises(SpecError) as caught:
        load(path)
    return str(caught.value)


def test_a_misspelt_field_in_a_cluster_file_gets_its_line_and_the_closest_name(tmp_path):
    path, line = _copy_with(tmp_path, "clusters/cluster.yaml", "scheduler:\n", "schedular:\n")
    message = _message(load_cluster_spec, path)
    assert f"{path}:{line}: unknown field 'schedular' (did you mean 'scheduler'?)" in message
    assert ": field 'scheduler' is required" in message


def test_a_misspelt_nested_field_in_a_cluster_file_is_compared_with_its_own_section(tmp_path):
    path, line = _copy_with(tmp_path, "clusters/cluster.yaml", "  as_cpu: false", "  as_cup: false")
    assert f"{path}:{line}: unknown field 'gpu_workers.as_cup' (did you mean 'as_cpu'?)" in _message(
        load_cluster_spec, path
    )


def test_a_misspelt_choice_in_a_cluster_file_lists_the_valid_ones_and_suggests(tmp_path):
    path, line = _copy_with(tmp_path, "clusters/cluster.yaml", "access: floating_ip", "access: floating-ip")
    message = _message(load_cluster_spec, path)
    assert (
        f"{path}:{line}: field 'access': got 'floating-ip', expected 'floating_ip', 'jump' or 'direct'"
        " (did you mean 'floating_ip'?)"
    ) in message


def test_a_misspelt_field_in_an_endpoint_file_gets_its_line_and_the_closest_name(tmp_path):
    path, line = _copy_with(tmp_path, "endpoints/deploy.yaml", "max_batch_rows: 32", "max_batch_row: 32")
    assert f"{path}:{line}: unknown field 'max_batch_row' (did you mean 'max_batch_rows'?)" in _message(
        load_endpoint_spec, path
    )


def test_a_misspelt_nested_field_in_an_endpoint_file_names_its_section(tmp_path):
    path, line = _copy_with(tmp_path, "endpoints/deploy.yaml", "  public: public", "  pubilc: public")
    assert f"{path}:{line}: unknown field 'network.pubilc' (did you mean 'public'?)" in _message(
        load_endpoint_spec, path
    )


def test_a_wrong_value_names_file_line_field_and_message(tmp_path):
    path, line = _copy_with(tmp_path, "endpoints/deploy.yaml", "nodes: 2", "nodes: 0")
    assert f"{path}:{line}: nodes: Input should be greater than or equal to 1" in _message(load_endpoint_spec, path)


class _Tiny(BaseModel):
    model_config = ConfigDict(extra="forbid")

    boundaries: int = 0


def test_the_formatter_names_nothing_when_no_valid_name_is_close(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text("boundaries: 1\nzzz: 2\n")
    _, node, data = read_mapping(path, "tiny")
    with pytest.raises(ValidationError) as caught:
        _Tiny.model_validate(data)
    assert str(spec_error(path, node, caught.value, _Tiny)) == (
        f"{path}:2: unknown field 'zzz'; expected one of: boundaries"
    )
    assert suggest("boundaires", ["boundaries", "by"]) == " (did you mean 'boundaries'?)"
    assert suggest("zzz", ["boundaries"]) == ""
