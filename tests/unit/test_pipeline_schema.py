"""The pipeline file's reference: a JSON Schema generated from its pydantic models (``dataops schema pipeline``) and a
page of every field, both kept in docs/ and checked here against the models; editors find the schema through the
first line of the example pipelines; and the schema and the loader agree on what a file may say."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Literal

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from orchestrator.cli.main import app
from orchestrator.errors import DataopsError, SpecError
from orchestrator.pipeline.schema_doc import FileKind, reference_page
from orchestrator.pipeline.spec import PipelineSpec, load_pipeline
from orchestrator.usecases.schema import file_kind, schema_text

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = ROOT / "docs" / "pipeline.schema.json"
REFERENCE_FILE = ROOT / "docs" / "pipeline-reference.md"
SCHEMA_LINE = re.compile(r"# yaml-language-server: \$schema=(?P<path>\S+)")


def _example_pipelines() -> list[Path]:
    """Every pipeline file under examples/: a YAML mapping with sources and a split."""
    found = []
    for path in sorted((ROOT / "examples").rglob("*.y*ml")):
        data = yaml.safe_load(path.read_text())
        if isinstance(data, dict) and "sources" in data and "split" in data:
            found.append(path)
    return found


EXAMPLE_PIPELINES = _example_pipelines()


def _validator(schema: dict) -> jsonschema.Draft202012Validator:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _schema_errors(schema: dict, data) -> list[str]:
    return [f"{'.'.join(map(str, error.absolute_path)) or '(top)'}: {error.message}"
            for error in _validator(schema).iter_errors(data)]


def _stale_message(path: Path, expected: str) -> str:
    current = path.read_text() if path.is_file() else ""
    diff = list(difflib.unified_diff(current.splitlines(), expected.splitlines(), f"{path.name} (committed)",
                                     f"{path.name} (from the models)", lineterm="", n=1))
    return (f"{path.relative_to(ROOT)} differs from what the pydantic models give: run `make schema` and commit the "
            f"result. First differences:\n" + "\n".join(diff[:40]))


def _page_examples(page: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```$", page, flags=re.DOTALL | re.MULTILINE)


def _page_rows(page: str) -> dict[str, dict]:
    rows = {}
    for line in page.splitlines():
        cells = re.fullmatch(r"\| `(?P<path>[^`]+)` \| (?P<type>.*?) \| (?P<default>.*?) \| (?P<required>\w*) \| "
                             r"(?P<description>.*) \|", line)
        if cells:
            rows[cells["path"]] = cells.groupdict()
    return rows


def _models_within(model: type[BaseModel]) -> set[type[BaseModel]]:
    """The model and every model its fields hold, through lists, mappings and unions."""
    found: set[type[BaseModel]] = set()

    def visit(annotation) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in found:
            found.add(annotation)
            for field in annotation.model_fields.values():
                visit(field.annotation)
        for argument in getattr(annotation, "__args__", ()):
            visit(argument)

    visit(model)
    return found


# ---------------------------------------------------------------- the committed copies


def test_the_committed_json_schema_is_what_the_models_give_now():
    expected = schema_text("pipeline", "json")
    up_to_date = SCHEMA_FILE.is_file() and SCHEMA_FILE.read_text() == expected  # (not pytest's diff of 40 kB)
    assert up_to_date, _stale_message(SCHEMA_FILE, expected)


def test_the_committed_reference_page_is_what_the_models_give_now():
    expected = schema_text("pipeline", "markdown")
    up_to_date = REFERENCE_FILE.is_file() and REFERENCE_FILE.read_text() == expected
    assert up_to_date, _stale_message(REFERENCE_FILE, expected)


# ---------------------------------------------------------------- the command


def test_dataops_schema_pipeline_prints_a_draft_2020_12_schema_with_its_id_and_title():
    result = CliRunner().invoke(app, ["schema", "pipeline"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == "urn:dataops:schema:pipeline"
    assert schema["title"] == "The pipeline file"
    assert set(schema["properties"]) == set(PipelineSpec.model_fields)
    assert set(schema["required"]) == {name for name, field in PipelineSpec.model_fields.items() if field.is_required()}


def test_dataops_schema_output_writes_the_schema_or_the_reference_page_to_a_file(tmp_path):
    for fmt, name in (("json", "pipeline.schema.json"), ("markdown", "pipeline-reference.md")):
        target = tmp_path / name
        result = CliRunner().invoke(app, ["schema", "pipeline", "--format", fmt, "--output", str(target)])
        assert result.exit_code == 0, result.output
        assert result.stdout == ""
        assert target.read_text() == schema_text("pipeline", fmt)


def test_an_unknown_kind_of_file_is_refused_with_the_closest_kind():
    with pytest.raises(DataopsError, match=r"no schema for 'pipelines' \(did you mean 'pipeline'\?\)"):
        file_kind("pipelines")


@pytest.mark.parametrize("kind, examples", [
    ("cluster", ["clusters/cluster.yaml", "clusters/ci-netns.yaml"]),
    ("endpoint", ["endpoints/deploy.yaml"]),
    ("runner", ["runners/runner.yaml"]),
    ("grid", ["flights/grid.yaml"]),
])
def test_every_other_kind_of_file_has_a_schema_that_its_example_files_satisfy(kind, examples):
    result = CliRunner().invoke(app, ["schema", kind])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["$id"] == f"urn:dataops:schema:{kind}"
    for example in examples:
        assert _schema_errors(schema, yaml.safe_load((ROOT / "examples" / example).read_text())) == [], example


def test_a_schedule_file_as_the_readme_writes_it_satisfies_the_schedule_schema():
    schedule = yaml.safe_load("""
        name: nightly-flights
        pipeline: ../examples/flights/pipeline.yaml
        cron: "30 2 * * *"
        timezone: Europe/Berlin
        catchup: latest
        starting_deadline: 6h
        retries: {max: 2, backoff: [5m, 20m]}
        concurrency: forbid
        on_failure: {webhook: "https://hooks.example.org/x"}
    """)
    schema = json.loads(schema_text("schedule"))
    assert _schema_errors(schema, schedule) == []
    assert _schema_errors(schema, {**schedule, "catchup": "newest"}) != []


# ---------------------------------------------------------------- editors: the example pipelines' first line


def test_the_example_pipelines_are_found():
    names = {path.relative_to(ROOT / "examples").as_posix() for path in EXAMPLE_PIPELINES}
    assert {"flights/pipeline.yaml", "flights/loop.yaml"} <= names


@pytest.mark.parametrize("path", EXAMPLE_PIPELINES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_every_example_pipeline_names_the_committed_schema_on_its_first_line(path):
    first = path.read_text().splitlines()[0]
    match = SCHEMA_LINE.fullmatch(first)
    assert match, f"{path}: the first line must be `# yaml-language-server: $schema=<relative path to " \
                  f"docs/pipeline.schema.json>`, got {first!r}"
    assert (path.parent / match["path"]).resolve() == SCHEMA_FILE, f"{path}: {match['path']} is not the schema"


@pytest.mark.parametrize("path", EXAMPLE_PIPELINES, ids=lambda p: p.relative_to(ROOT / "examples").as_posix())
def test_every_example_pipeline_satisfies_both_the_schema_its_first_line_names_and_the_loader(path):
    named = SCHEMA_LINE.fullmatch(path.read_text().splitlines()[0])
    schema = json.loads((path.parent / named["path"]).read_text()) if named else json.loads(schema_text("pipeline"))
    assert _schema_errors(schema, yaml.safe_load(path.read_text())) == []
    load_pipeline(path)


# ---------------------------------------------------------------- the schema and the loader agree

VALID = """\
name: trips
sources:
  trips:
    location: data/trips.csv
    validation:
      max_bad_fraction: 0.05
      columns: {pickup: {type: datetime, not_null: true}}
    steps:
      - filter: "distance > 0"
split:
  by: time
  column: pickup
  boundaries: {train: "2024-01-01", validation: "2024-02-01", test: "2024-03-01"}
model:
  name: trip-fare
  task: regression
  target: fare
  features: {numeric: [distance]}
  estimator: sklearn.linear_model.Ridge
"""

MISTAKES = {
    "a misspelt field": ("  boundaries:", "  boundaires:"),
    "a misspelt top-level section": ("split:\n", "splitt:\n"),
    "a choice that is not one": ("  by: time", "  by: random"),
    "a step that sets two kinds": ('      - filter: "distance > 0"', '      - {filter: "distance > 0", drop: [x]}'),
    "a step that sets none": ('      - filter: "distance > 0"', "      - {}"),
    "a number that is not one": ("max_bad_fraction: 0.05", "max_bad_fraction: lots"),
    "a fraction above 1": ("max_bad_fraction: 0.05", "max_bad_fraction: 2"),
    "a model without its target": ("  target: fare\n", ""),
    "a validation type that does not exist": ("type: datetime", "type: timestamp"),
    "a list where a mapping is due": ("features: {numeric: [distance]}", "features: [distance]"),
}


def test_a_valid_pipeline_satisfies_both_the_schema_and_the_loader(tmp_path):
    path = tmp_path / "pipeline.yaml"
    path.write_text(VALID)
    load_pipeline(path)
    assert _schema_errors(json.loads(schema_text("pipeline")), yaml.safe_load(VALID)) == []


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_schema_refuses_what_the_loader_refuses(mistake, tmp_path):
    old, new = MISTAKES[mistake]
    assert old in VALID
    text = VALID.replace(old, new, 1)
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    with pytest.raises(SpecError):
        load_pipeline(path)
    assert _schema_errors(json.loads(schema_text("pipeline")), yaml.safe_load(text)), f"the schema accepts {mistake}"


# ---------------------------------------------------------------- the reference page


def test_every_example_of_the_reference_page_is_a_pipeline_file_that_loads_and_satisfies_the_schema(tmp_path):
    page = schema_text("pipeline", "markdown")
    examples = _page_examples(page)
    sections = re.findall(r"^## `(\w+)`", page, flags=re.MULTILINE)
    assert len(examples) == len(sections) + 1, ("one example per section, and the smallest file: give a new section "
                                                "its own in PIPELINE_EXAMPLES (orchestrator/pipeline/schema_doc.py)")
    schema = json.loads(schema_text("pipeline"))
    for number, example in enumerate(examples):
        path = tmp_path / f"example-{number}.yaml"
        path.write_text(example)
        load_pipeline(path)
        assert _schema_errors(schema, yaml.safe_load(example)) == [], example


def test_every_field_of_the_pipeline_file_has_a_row_with_a_description_in_the_reference():
    rows = _page_rows(schema_text("pipeline", "markdown"))
    missing = [f"{model.__name__}.{name}" for model in _models_within(PipelineSpec) for name in model.model_fields
               if not any(path == name or path.endswith(f".{name}") for path in rows)]
    assert missing == [], f"fields without a row in the reference: {missing}"
    undescribed = [path for path, row in rows.items() if not row["description"]]
    assert undescribed == [], f"fields without a description (give each pydantic Field one): {undescribed}"


def test_a_row_of_the_reference_gives_the_nested_path_type_default_and_whether_it_is_required():
    rows = _page_rows(schema_text("pipeline", "markdown"))
    tolerance = rows["blend.joins[].time.tolerance"]
    assert (tolerance["type"], tolerance["default"], tolerance["required"]) == ("string", "`1h`", "")
    assert rows["split.by"]["type"] == "one of `time`, `hash`" and rows["split.by"]["required"] == "yes"
    bad_fraction = rows["sources.<source>.validation.max_bad_fraction"]
    assert (bad_fraction["type"], bad_fraction["default"]) == ("number, at least 0 and at most 1", "`0.05`")
    assert rows["sources.<source>.validation.columns.<column>.not_null"]["default"] == "`false`"
    assert rows["features[].derive"]["type"] == "map of name to string"
    assert rows["split.boundaries"]["type"] == "map of `train`, `validation`, `test` to string"


def test_a_field_holding_one_of_several_models_lists_the_fields_of_each():
    class Csv(BaseModel):
        format: Literal["csv"] = Field(description="Comma-separated.")
        delimiter: str = Field(",", description="Between values.")

    class Api(BaseModel):
        format: Literal["api"] = Field(description="A web API.")
        url: str = Field(description="The first page.")

    class File(BaseModel):
        inputs: dict[str, Csv | Api] = Field(description="Inputs by name.")

    rows = _page_rows(reference_page(FileKind("test", File, "The test file", "A file for this test.")))
    assert rows["inputs"]["type"] == "map of name to mapping"
    assert rows["inputs.<input>.delimiter"]["default"] == "`','`"  # as YAML writes it
    assert rows["inputs.<input>.url"]["required"] == "yes"
    assert rows["inputs.<input>.format"]["type"] in ("`csv`", "`api`")
