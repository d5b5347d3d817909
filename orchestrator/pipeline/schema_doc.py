"""The reference of a file users write, generated from its pydantic models: a JSON Schema (draft 2020-12) for
editors and other tools, and a Markdown page of every field with its type, default and description.

The pipeline file is the first such file (its page has an example per section, each a whole pipeline file that
loads); the cluster, endpoint, runner, schedule and grid files go through the same two functions. Nothing here is
written by hand that the models already say: regenerate after changing a model (``make schema``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault

from orchestrator.pipeline.spec import PipelineSpec, Step

DRAFT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class FileKind:
    """One kind of file users write, as its reference presents it.

    Attributes:
        name: The kind, as ``dataops schema NAME`` spells it (``pipeline``).
        model: The pydantic model the whole file validates against.
        title: The schema's and the page's title.
        description: What the file is for, one paragraph.
        refinements: Per model, schema keywords for what its validators check but pydantic cannot express (a step
            sets exactly one field); they make an editor's hints match what loading the file accepts.
        examples: Per top-level field, a whole file showing that section (the page prints it after its table).
    """

    name: str
    model: type[BaseModel]
    title: str
    description: str
    refinements: Mapping[type[BaseModel], dict] = field(default_factory=dict)
    examples: Mapping[str, str] = field(default_factory=dict)

    @property
    def schema_id(self) -> str:
        """The schema's ``$id``: a name, not a place to download it from."""
        return f"urn:dataops:schema:{self.name}"


class _FileSchemaGenerator(GenerateJsonSchema):
    """pydantic's generator, with the defaults a user would get and without the titles that repeat field names."""

    refinements: Mapping[type[BaseModel], dict] = {}

    def get_default_value(self, schema) -> Any:
        # A list or a mapping built by a factory is a default worth showing; a whole nested model is not: its own
        # fields carry their defaults.
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            value = factory()
        else:
            value = super().get_default_value(schema)
        return NoDefault if isinstance(value, BaseModel) else value

    def field_title_should_be_set(self, schema) -> bool:
        return False

    def model_schema(self, schema) -> dict:
        json_schema = super().model_schema(schema)
        json_schema.update(self.refinements.get(schema["cls"], {}))
        return json_schema


def file_schema(kind: FileKind) -> dict:
    """The JSON Schema of a kind of file, draft 2020-12, with its ``$id``, title and description.

    Args:
        kind: The file's kind.

    Returns:
        The schema, as a JSON-able mapping with its keys in a stable order.
    """
    # pydantic takes a generator class, not an instance: one per kind, carrying its refinements.
    generator = type("Generator", (_FileSchemaGenerator,), {"refinements": kind.refinements})
    body = kind.model.model_json_schema(schema_generator=generator)
    body.pop("title", None)
    body.pop("description", None)
    return {
        "$schema": DRAFT,
        "$id": kind.schema_id,
        "$comment": f"Generated from the pydantic models by `dataops schema {kind.name}`; do not edit by hand.",
        "title": kind.title,
        "description": kind.description,
        **body,
    }


def schema_json(kind: FileKind) -> str:
    """The JSON Schema of ``kind`` as the text of its file: indented, UTF-8, ending with a newline."""
    return json.dumps(file_schema(kind), indent=2, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------- the reference page


@dataclass(frozen=True)
class _Row:
    path: str
    type: str
    default: str
    required: bool
    description: str


class _Walker:
    """Flattens a schema into one row per field, its nested path written as a user would reach it:
    ``sources.<source>.validation.columns.<column>.type``, ``blend.joins[].time.tolerance``."""

    def __init__(self, schema: dict):
        self.defs = schema.get("$defs", {})
        self.expanding: dict[str, str] = {}  # definition -> the path where it is being listed (a model within itself)

    def resolve(self, node: dict) -> tuple[dict, str | None]:
        """The schema behind a ``$ref`` (and the definition's name), with ``X | None`` reduced to ``X``."""
        options = _options(node)
        if len(options) == 1:
            node = {**{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}, **options[0]}
        ref = node.get("$ref")
        if ref is None:
            return node, None
        name = ref.rsplit("/", 1)[-1]
        return {**self.defs[name], **{k: v for k, v in node.items() if k != "$ref"}}, name

    def rows(self, path: str, node: dict) -> list[_Row]:
        """Rows of the fields under ``path`` (a model, a mapping or a list of models, or a choice of them), nested
        ones included."""
        if len(_options(node)) > 1:
            return [row for option in _options(node) for row in self.rows(path, option)]
        node, name = self.resolve(node)
        if node.get("type") == "array":
            return self.rows(f"{path}[]", node.get("items", {}))
        values = node.get("additionalProperties")
        if node.get("type") == "object" and isinstance(values, dict) and not node.get("properties"):
            return self.rows(f"{path}.<{_singular(path)}>", values)
        if "properties" not in node:
            return []
        if name in self.expanding:  # a recursive model: its fields are those listed above
            return [_Row(f"{path}.*", "", "", False, f"the fields of `{self.expanding[name]}`")]
        if name is not None:
            self.expanding[name] = path
        rows = []
        required = set(node.get("required", ()))
        for key, child in node["properties"].items():
            child_path = f"{path}.{key}" if path else key
            rows.append(self.row(child_path, child, key in required))
            rows += self.rows(child_path, child)
        self.expanding.pop(name, None)
        return rows

    def row(self, path: str, node: dict, required: bool) -> _Row:
        """The row of one field; a field without a description of its own takes its model's docstring."""
        return _Row(path, type_text(node, self), _default_text(node), required,
                    node.get("description") or self.inner_model(node).get("description", ""))

    def inner_model(self, node: dict) -> dict:
        """The model a field holds, through lists and mappings (``{}`` for a field of plain values)."""
        node, name = self.resolve(node)
        if node.get("type") == "array":
            return self.inner_model(node.get("items", {}))
        values = node.get("additionalProperties")
        if node.get("type") == "object" and isinstance(values, dict) and not node.get("properties"):
            return self.inner_model(values)
        return self.defs[name] if name is not None and "properties" in node else {}


def _options(node: dict) -> list[dict]:
    """The alternatives of a union (``anyOf``, or ``oneOf`` for a discriminated one), ``null`` left out."""
    return [o for o in node.get("anyOf", node.get("oneOf", [])) if o.get("type") != "null"]


def _singular(path: str) -> str:
    last = path.rsplit(".", 1)[-1].rstrip("[]")
    return last[:-1] if last.endswith("s") and len(last) > 1 else "name"


def type_text(node: dict, walker: _Walker) -> str:
    """How a field's type reads in the page: ``string``, ``list of string``, ``number, 0 to 1``, ``one of time,
    hash``, ``mapping`` (a section, whose fields follow)."""
    options = _options(node)
    if len(options) > 1:
        return " or ".join(dict.fromkeys(type_text(o, walker) for o in options))
    node, _ = walker.resolve(node)
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type")
    if kind == "array":
        return f"list of {type_text(node.get('items', {}), walker)}"
    if kind == "object" and "properties" in node:
        return "mapping"
    if kind == "object":
        keys = node.get("propertyNames", {}).get("enum")
        key_text = ", ".join(f"`{k}`" for k in keys) if keys else "name"
        values = node.get("additionalProperties")
        value_text = type_text(values, walker) if isinstance(values, dict) else "any"
        return f"map of {key_text} to {value_text}"
    if kind is None:
        return "any"
    return kind + _bounds(node)


def _bounds(node: dict) -> str:
    low = node.get("minimum", node.get("exclusiveMinimum"))
    high = node.get("maximum", node.get("exclusiveMaximum"))
    low_text = f"{'above' if 'exclusiveMinimum' in node else 'at least'} {low}"
    high_text = f"{'below' if 'exclusiveMaximum' in node else 'at most'} {high}"
    parts = [low_text] * (low is not None) + [high_text] * (high is not None)
    if "pattern" in node:
        parts.append(f"matching `{node['pattern']}`")
    return f", {' and '.join(parts)}" if parts else ""


def _default_text(node: dict) -> str:
    if "default" not in node or node["default"] is None:
        return ""
    text = yaml.safe_dump(node["default"], default_flow_style=True, allow_unicode=True, width=10_000).strip()
    return f"`{text.removesuffix('...').strip()}`"


def _prose(text: str) -> str:
    # Docstrings wrap lines and quote code the reStructuredText way; a Markdown paragraph is one line.
    return " ".join(str(text).split()).replace("``", "`")


def _cell(text: str) -> str:
    return _prose(text).replace("|", "\\|")


def _table(rows: list[_Row]) -> list[str]:
    lines = ["| field | type | default | required | description |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| `{row.path}` | {_cell(row.type)} | {_cell(row.default)} | {'yes' if row.required else ''} | "
              f"{_cell(row.description)} |" for row in rows]
    return lines


def reference_page(kind: FileKind, schema_file: str | None = None) -> str:
    """The Markdown reference of a kind of file: its top-level fields, then one section per top-level field that
    holds others, each with a table of every field beneath it (nested path, type, default, whether it is required,
    description) and, where the kind has one, a whole file showing it.

    Args:
        kind: The file's kind.
        schema_file: Where the repository keeps the JSON Schema (relative to its root), if it keeps one.

    Returns:
        The page, ending with a newline.
    """
    schema = file_schema(kind)
    walker = _Walker(schema)
    lines = [
        f"# {kind.title}",
        "",
        (f"<!-- Generated from the pydantic models by `dataops schema {kind.name} --format markdown` (`make schema`); "
         "do not edit by hand. -->"),
        "",
        kind.description,
        "",
        _editor_note(kind.name, schema_file),
        "",
        ("A field's path reads from the top of the file: `<name>` stands for a key you choose (a source's name, a "
         "column's), `[]` for each item of a list. A field that is neither required nor given a default may be left "
         "out."),
        "",
        "## Top-level fields",
        "",
    ]
    top = schema.get("properties", {})
    required = set(schema.get("required", ()))
    lines += _table([walker.row(key, node, key in required) for key, node in top.items()])
    if "" in kind.examples:
        lines += ["", "The smallest file:", "", "```yaml", kind.examples[""].strip(), "```"]
    for key, node in top.items():
        rows = walker.rows(key, node)
        if not rows:
            continue
        lines += ["", f"## `{key}`", ""]
        about = node.get("description") or ""
        detail = walker.inner_model(node).get("description", "")
        lines += [_prose(" ".join(part for part in dict.fromkeys((about, detail)) if part)), ""]
        lines += _table(rows)
        if key in kind.examples:
            lines += ["", "```yaml", kind.examples[key].strip(), "```"]
    return "\n".join(lines) + "\n"


def _editor_note(kind: str, schema_file: str | None) -> str:
    where = (f"the repository's `{schema_file}`, relative to the file: "
             f"`# yaml-language-server: $schema=../../{schema_file}` for a file two folders down from the root; "
             f"elsewhere, a copy written by `dataops schema {kind} --output {kind}.schema.json`"
             if schema_file else
             f"a copy written by `dataops schema {kind} --output {kind}.schema.json`, relative to the file: "
             f"`# yaml-language-server: $schema={kind}.schema.json` beside it")
    return ("Editors that speak the YAML language server (VS Code's YAML extension, Neovim, JetBrains IDEs) check "
            f"and complete the file as it is typed when its first line names its JSON Schema: {where}.")


# ---------------------------------------------------------------- the pipeline file

_SPLIT = "split: {by: hash, column: id, fractions: {train: 0.7, validation: 0.1, test: 0.1, serve: 0.1}}"

# Every example is a whole pipeline file: the reference's test loads each one as `dataops run` would.
PIPELINE_EXAMPLES = {
    "": f"""
name: penguins
sources:
  penguins: {{location: data/penguins.csv}}
{_SPLIT}
""",
    "sources": f"""
name: penguins
sources:
  penguins:
    location: data/penguins.csv         # a local path (relative to this file), http(s)://, file:// or swift://
    columns: [id, species, island, "Culmen Length (mm)", "Body Mass (g)", sampled]
    validation:
      max_bad_fraction: 0.02            # a run with more failing rows fails; the others go to quarantine
      columns:
        species: {{type: string, not_null: true, allowed: [Adelie, Chinstrap, Gentoo]}}
        "Body Mass (g)": {{type: float, min: 2000, max: 7000}}
        sampled: {{type: datetime}}
    steps:
      - drop_nulls: ["Culmen Length (mm)"]
      - rename: {{"Body Mass (g)": body_mass_g}}
      - filter: "body_mass_g > 2500 and island != 'Torgersen'"
      - derive: {{mass_kg: "body_mass_g / 1000", long_bill: "`Culmen Length (mm)` > 45"}}
      - fill_nulls: {{island: unknown}}
      - function: cleaning:fix_islands   # a function of cleaning.py beside this file, DataFrame in and out
{_SPLIT}
""",
    "blend": """
name: flights-delay
sources:
  flights: {location: data/flights}
  weather: {location: data/weather.csv}
  planes: {location: data/planes.jsonl}
blend:
  base: flights
  joins:
    - source: weather                   # the weather at the origin airport at departure (an as-of join)
      keys: [origin]
      time: {left: time_hour, right: time_hour, tolerance: 1h, direction: backward}
    - source: planes
      left_on: [tailnum]
      right_on: [registration]
      columns: [seats, engines]
      min_match_fraction: 0.5           # fail the run when fewer than half the flights find their plane
split:
  by: time
  column: time_hour
  boundaries: {train: "2013-09-01", validation: "2013-10-01", test: "2013-11-01"}
""",
    "features": f"""
name: penguins
sources:
  penguins: {{location: data/penguins.csv}}
features:
  - derive: {{bill_ratio: "`Culmen Length (mm)` / `Culmen Depth (mm)`"}}
  - function: features:add_features      # features.py beside this file
  - keep: [id, species, bill_ratio, island]
{_SPLIT}
""",
    "split": """
name: flights-delay
sources:
  flights: {location: data/flights}
split:
  by: time                              # train before 2013-09-01, validation before 2013-10-01, then test,
  column: time_hour                     # and serve from 2013-11-01 on
  boundaries: {train: "2013-09-01", validation: "2013-10-01", test: "2013-11-01"}
  start: "2013-02-01"                   # older rows are in no partition
  key: [carrier, flight, time_hour]     # an entity that must never be in two partitions
""",
    "model": f"""
name: penguins
sources:
  penguins: {{location: data/penguins.csv}}
{_SPLIT}
model:
  name: penguin-mass
  task: regression
  target: body_mass_g
  features: {{numeric: ["Culmen Length (mm)", "Flipper Length (mm)"], categorical: [species, island]}}
  estimator: sklearn.ensemble.HistGradientBoostingRegressor
  params: {{max_iter: 200}}
  tuning:
    strategy: random
    n_iter: 8
    space: {{learning_rate: {{loguniform: [0.01, 0.3]}}, max_leaf_nodes: [15, 31, 63]}}
  preprocessing: {{numeric_impute: mean}}
  parity_tolerance: 1.0e-4
""",
    "monitoring": f"""
name: penguins
sources:
  penguins: {{location: data/penguins.csv}}
{_SPLIT}
monitoring:
  min_rows: 500
  drift_share: 0.5
  numeric: {{psi_drift: 0.3}}
  columns: {{island: {{ignore: true}}, "Body Mass (g)": {{psi_drift: 0.2}}}}
  watch: {{every: 1d, windows: 3, drifted: 2}}
  retrain: {{cooldown: 7d, max: 2 per 30d, approval: manual, challenger: {{metric: rmse, margin: 5}}}}
""",
}

PIPELINE_FILE = FileKind(
    name="pipeline",
    model=PipelineSpec,
    title="The pipeline file",
    description=(
        "A pipeline file (`dataops run PIPELINE.yaml`) declares, in order: `sources` (read, validate, clean), "
        "`blend` (joins onto a base source, plain or as-of), `features` (steps on the blended frame), `split` "
        "(train / validation / test / serve), `model` (what to train, evaluate, export to ONNX and register) and "
        "`monitoring` (the drift policy saved with the model)."
    ),
    refinements={Step: {"minProperties": 1, "maxProperties": 1}},  # a step sets exactly one of its fields
    examples=PIPELINE_EXAMPLES,
)
