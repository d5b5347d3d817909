"""``dataops schema KIND``: the JSON Schema (or the Markdown reference) of a kind of file users write, printed or
written to a file. ``make schema`` writes the pipeline file's two into ``docs/``, where CI checks them.

Every kind goes through the one generator of ``orchestrator.pipeline.schema_doc``; this module only says which
model each kind's file validates against. The models are imported when a schema is asked for, not when the CLI
starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from orchestrator.atomic import write_atomically
from orchestrator.errors import DataopsError
from orchestrator.yaml_files import suggest

# The kinds of files users write, and what each is; `dataops schema NAME` for each.
FILE_KINDS = {
    "pipeline": "the pipeline file (dataops run)",
    "cluster": "the cluster file (dataops cluster create -f)",
    "endpoint": "the endpoint file (dataops deploy -f)",
    "runner": "the schedule runner file (dataops schedule runner create -f)",
    "schedule": "the schedule file (dataops schedule create -f)",
    "grid": "the grid file of a sweep (dataops experiment run --grid)",
}

SchemaFormat = Literal["json", "markdown"]

# The pipeline file's schema kept in the repository (`make schema`), which the example pipelines' first line names.
PIPELINE_SCHEMA_FILE = "docs/pipeline.schema.json"


def file_kind(kind: str):
    """The ``FileKind`` (model, title, description, examples) of ``kind``.

    Raises:
        DataopsError: No file of that kind; the message lists the kinds and the closest one.
    """
    from orchestrator.pipeline.schema_doc import PIPELINE_FILE, FileKind

    if kind == "pipeline":
        return PIPELINE_FILE
    if kind not in FILE_KINDS:
        raise DataopsError(f"no schema for {kind!r}{suggest(kind, FILE_KINDS)}; kinds: {', '.join(FILE_KINDS)}")
    model, about = _other_models()[kind]
    return FileKind(name=kind, model=model, title=f"The {kind} file",
                    description=f"{FILE_KINDS[kind][0].upper()}{FILE_KINDS[kind][1:]}: {about}")


def _other_models() -> dict:
    from orchestrator.clusters.spec import ClusterSpec
    from orchestrator.deploy.spec import EndpointSpec
    from orchestrator.experiments.grid import GridSpec
    from orchestrator.runners.spec import RunnerSpec
    from orchestrator.scheduling.spec import ScheduleSpec

    return {
        "cluster": (ClusterSpec, "a Dask cluster made of a Heat stack and configured by Ansible."),
        "endpoint": (EndpointSpec, "an inference endpoint, the servers that serve a registered model."),
        "runner": (RunnerSpec, "a VM that ticks the schedules kept in a store."),
        "schedule": (ScheduleSpec, "what runs, when, and what happens when slots are missed, overlap or fail."),
        "grid": (GridSpec, "the points of a sweep, as values of fields of a pipeline file."),
    }


def schema_text(kind: str, fmt: SchemaFormat = "json") -> str:
    """The JSON Schema (draft 2020-12) of a kind of file, or its Markdown reference page.

    Args:
        kind: One of ``FILE_KINDS`` (``pipeline``, ``cluster``...).
        fmt: ``json`` for the schema, ``markdown`` for the reference page.

    Returns:
        The text, ending with a newline; the same for the same models, byte for byte.

    Raises:
        DataopsError: No file of that kind.
    """
    from orchestrator.pipeline.schema_doc import reference_page, schema_json

    spec_kind = file_kind(kind)
    if fmt == "markdown":
        return reference_page(spec_kind, PIPELINE_SCHEMA_FILE if kind == "pipeline" else None)
    return schema_json(spec_kind)


def write_schema(kind: str, output: Path, fmt: SchemaFormat = "json") -> Path:
    """Write what :func:`schema_text` gives to ``output``, atomically.

    Raises:
        DataopsError: No file of that kind, or ``output`` cannot be written.
    """
    text = schema_text(kind, fmt)
    try:
        write_atomically(output, text)
    except OSError as exc:
        raise DataopsError(f"cannot write {output}: {exc.strerror}") from exc
    return output

