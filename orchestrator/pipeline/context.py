"""What a running stage is given: its scratch folder, its inputs, the Dask client, and nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import dask.dataframe as dd
from distributed import Client

from orchestrator.artifacts.store import ArtifactStore
from orchestrator.pipeline.isolation import PartitionView
from orchestrator.pipeline.spec import PipelineSpec


@dataclass
class StageContext:
    """One stage's view of the run. Post-split stages reach partitions only through ``partitions``."""

    name: str
    spec: PipelineSpec
    base_dir: Path
    out_dir: Path
    client: Client
    store: ArtifactStore
    run_id: str
    inputs: dict[str, Path] = field(default_factory=dict)
    upstream: dict[str, dict] = field(default_factory=dict)
    source_frames: dict[str, dd.DataFrame] = field(default_factory=dict)
    partitions: PartitionView | None = None
    on_progress: object = None
