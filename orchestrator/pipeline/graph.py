"""The stage graph of a pipeline, built from its file by the registered stage kinds and checked when built.

Checked, as Kedro checks a pipeline: every input a stage reads exists (with "did you mean"), no two stages write the
same output, no stage reads a partition its split does not write or a split's whole output, and no stages read each
other in a cycle. The order is topological and stable: among stages ready to run, the one declared first runs first.
"""

from __future__ import annotations

import heapq
from collections import defaultdict

from orchestrator.errors import SpecError
from orchestrator.pipeline import kinds as _built_in_kinds  # noqa: F401  (importing it registers the built-in kinds)
from orchestrator.pipeline.spec import LoadedPipeline
from orchestrator.pipeline.stage_kinds import STAGE_KINDS, Stage, StageKindRegistry
from orchestrator.yaml_files import suggest

__all__ = ["GraphError", "Stage", "build_graph"]


class GraphError(SpecError):
    """The stages a pipeline file gives its stage kinds do not form a valid graph; the message names the stage."""


def build_graph(pipeline: LoadedPipeline, kinds: StageKindRegistry | None = None) -> list[Stage]:
    """The stages of ``pipeline`` in execution order (every stage after all it reads).

    Args:
        pipeline: the loaded pipeline file.
        kinds: the stage kinds to build from; the registered ones by default.

    Raises:
        GraphError: a stage reads something no stage writes, a partition its split does not write or a split's
            whole output; two stages write the same output; or stages read each other in a cycle.
    """
    registry = STAGE_KINDS if kinds is None else kinds
    stages = [stage for kind in registry for stage in kind.stages(pipeline)]
    by_name = _by_unique_name(stages, pipeline)
    problems = [problem for stage in stages for problem in _read_problems(stage, by_name, pipeline)]
    if problems:
        raise GraphError("\n".join(f"{pipeline.path}: {problem}" for problem in problems))
    return _in_order(stages, pipeline)


def _by_unique_name(stages: list[Stage], pipeline: LoadedPipeline) -> dict[str, Stage]:
    by_name: dict[str, Stage] = {}
    for stage in stages:
        if (other := by_name.get(stage.name)) is not None:
            raise GraphError(
                f"{pipeline.path}: stage {stage.name!r} is declared twice (by the {other.kind!r} and {stage.kind!r} "
                f"stage kinds): two stages would write the same output; each output belongs to exactly one stage"
            )
        by_name[stage.name] = stage
    return by_name


def _read_problems(stage: Stage, by_name: dict[str, Stage], pipeline: LoadedPipeline) -> list[str]:
    reads, problems = stage.reads, []
    known = ", ".join(by_name)
    for name in reads.outputs:
        if name not in by_name:
            problems.append(f"stage {stage.name!r} reads {name!r}, which no stage of this pipeline writes"
                            f"{suggest(name, by_name)}; its stages are {known}")
        elif by_name[name].writes.partitions:
            # Isolation: a split's output is reached partition by partition, through a PartitionView, or not at all.
            problems.append(f"stage {stage.name!r} reads the whole output of {name!r}, which is split into partitions; "
                            f"declare the partitions it needs in reads.partitions (partitions_of={name!r}) instead")
    if reads.partitions:
        split = by_name.get(reads.partitions_of)
        if split is None:
            problems.append(f"stage {stage.name!r} reads partitions of {reads.partitions_of!r}, which no stage of this "
                            f"pipeline writes{suggest(reads.partitions_of, by_name)}; its stages are {known}")
        elif not split.writes.partitions:
            problems.append(f"stage {stage.name!r} reads partitions of {split.name!r}, which writes no partitions")
        else:
            for part in reads.partitions:
                if part not in split.writes.partitions:
                    problems.append(
                        f"stage {stage.name!r} reads partition {part!r}{suggest(part, split.writes.partitions)}, which "
                        f"{split.name!r} does not write; its partitions are {', '.join(split.writes.partitions)}"
                    )
    sources = pipeline.spec.sources
    if reads.source is not None and reads.source not in sources:
        problems.append(f"stage {stage.name!r} reads source {reads.source!r}, which the file does not declare"
                        f"{suggest(reads.source, sources)}; declared sources: {', '.join(sources)}")
    return problems


def _in_order(stages: list[Stage], pipeline: LoadedPipeline) -> list[Stage]:
    """Kahn's algorithm, taking among ready stages the one declared first: a chain declared in order keeps it."""
    index = {stage.name: position for position, stage in enumerate(stages)}
    waiting = {stage.name: set(stage.depends) for stage in stages}
    dependants: dict[str, list[str]] = defaultdict(list)
    for stage in stages:
        for upstream in waiting[stage.name]:
            dependants[upstream].append(stage.name)
    ready = [index[name] for name, upstream in waiting.items() if not upstream]
    heapq.heapify(ready)
    ordered: list[Stage] = []
    while ready:
        stage = stages[heapq.heappop(ready)]
        ordered.append(stage)
        for name in dependants[stage.name]:
            waiting[name].discard(stage.name)
            if not waiting[name]:
                heapq.heappush(ready, index[name])
    if len(ordered) < len(stages):
        raise GraphError(f"{pipeline.path}: {_cycle(stages, waiting)}; a stage may read only stages that do not, "
                         f"directly or through others, read it")
    return ordered


def _cycle(stages: list[Stage], waiting: dict[str, set[str]]) -> str:
    # Every stage left waiting waits for another one left waiting: following them must come back round.
    position = {stage.name: index for index, stage in enumerate(stages)}
    name = next(stage.name for stage in stages if waiting[stage.name])
    path: list[str] = []
    while name not in path:
        path.append(name)
        name = min(waiting[name], key=position.__getitem__)
    loop = path[path.index(name):] + [name]
    return "stages read each other in a cycle: " + " reads ".join(repr(step) for step in loop)
