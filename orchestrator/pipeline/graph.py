"""The stage graph of a pipeline: which stages exist, what each depends on, what goes into its cache key."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

from orchestrator.pipeline import data_stages, model_stages
from orchestrator.pipeline.context import StageContext
from orchestrator.pipeline.isolation import STAGE_READS
from orchestrator.pipeline.spec import LoadedPipeline
from orchestrator.pipeline.transforms import code_version


@dataclass
class Stage:
    """One node: a function of its context, cached under its config, code and inputs."""

    name: str
    run: Callable[[StageContext], dict]
    config: object
    depends: list[str] = field(default_factory=list)
    code: str = ""
    reads: tuple[str, ...] = ()
    cached: bool = True


def _ml_code_version() -> str:
    # Results of training and export depend on these libraries' versions.
    names = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy")
    return ",".join(f"{n}={_version(n)}" for n in names)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def build_graph(pipeline: LoadedPipeline) -> list[Stage]:
    """Stages in execution order (every stage after all it depends on)."""
    spec, base = pipeline.spec, pipeline.base_dir
    stages: list[Stage] = []
    for name, source in spec.sources.items():
        stages.append(
            Stage(
                f"ingest.{name}",
                lambda ctx, n=name: data_stages.ingest(ctx, n),
                source.model_dump(mode="json"),
                code=code_version(source.steps, Path(base)),
            )
        )
    ingests = [s.name for s in stages]
    blend_config = spec.blend.model_dump(mode="json") if spec.blend else None
    stages.append(Stage("blend", data_stages.blend, blend_config, ingests))
    stages.append(
        Stage("features", data_stages.features, [s.model_dump(mode="json") for s in spec.features], ["blend"],
              code=code_version(spec.features, Path(base)))
    )
    stages.append(Stage("split", data_stages.split, spec.split.model_dump(mode="json"), ["features"]))
    if spec.model is None:
        return stages
    model_config = spec.model.model_dump(mode="json")
    ml = _ml_code_version()
    stages += [
        Stage("train", model_stages.train, model_config, ["split"], ml, STAGE_READS["train"]),
        Stage("evaluate", model_stages.evaluate, model_config, ["train", "split"], ml, STAGE_READS["evaluate"]),
        Stage("export", model_stages.export, model_config, ["train", "evaluate", "split"], ml, STAGE_READS["export"]),
        Stage("register", model_stages.register, model_config, ["export"], ml, cached=False),
    ]
    if spec.score_serve:
        stages.append(Stage("score", model_stages.score, model_config, ["export", "split"], ml, STAGE_READS["score"]))
    return stages
