"""A sweep of four points over a small pipeline on a real Dask cluster: the stages before training run once for all
four points, each point trains its own model, `experiment compare` ranks the four and plots them, and an
interrupted sweep resumes with its missing points only."""

from __future__ import annotations

import json
import textwrap
from collections import Counter

import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.cli.main import app
from orchestrator.usecases.experiments import run_experiment_files
from tests.integration.monitoring.test_reference_profile import MODEL
from tests.integration.pipeline.conftest import PIPELINE, make_shop

pytestmark = pytest.mark.integration

UPSTREAM = ("ingest.events", "ingest.customers", "blend", "features", "split")
PER_POINT = ("train", "evaluate", "export", "score")
GRID = """
name: shop-regularisation
metric: log_loss
parameters:
  model.params.C: [0.001, 0.1, 10.0, 1000.0]
"""


@pytest.fixture
def shop_sweep(tmp_path):
    """A shop pipeline with a model, and a grid of four points over its regularisation."""
    folder = tmp_path / "shop"
    folder.mkdir()
    make_shop(folder)
    pipeline = folder / "pipeline.yaml"
    pipeline.write_text(textwrap.dedent(PIPELINE.format(max_bad=0.05, key="event_id")).lstrip()
                        + textwrap.dedent(MODEL))
    grid = tmp_path / "grid.yaml"
    grid.write_text(textwrap.dedent(GRID).lstrip())
    return pipeline, grid, tmp_path / "store"


def records(store_path) -> list[dict]:
    store = LocalStore(store_path)
    return [load_record(store, run_id) for run_id in list_run_ids(store)]


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result


def test_a_sweep_of_four_points_runs_the_shared_stages_once_and_trains_four_models(shop_sweep, dask_client, tmp_path):
    pipeline, grid, store = shop_sweep
    scheduler = dask_client.scheduler.address
    exp_id = invoke("experiment", "run", str(pipeline), "--grid", str(grid), "--store", str(store),
                    "--scheduler", scheduler, "--max-parallel", "2").stdout.strip().splitlines()[-1]

    runs = records(store)
    assert sorted(r["parameters"]["point"] for r in runs) == [1, 2, 3, 4]
    assert {r["parameters"]["experiment"] for r in runs} == {exp_id}
    assert {r["status"] for r in runs} == {"succeeded"}
    assert sorted(r["parameters"]["model"]["params"]["C"] for r in runs) == [0.001, 0.1, 10.0, 1000.0]
    ran = Counter(name for r in runs for name, stage in r["stages"].items() if stage["status"] == "ran")
    cached = Counter(name for r in runs for name, stage in r["stages"].items() if stage["status"] == "cached")
    assert {name: ran[name] for name in UPSTREAM} == dict.fromkeys(UPSTREAM, 1)
    assert {name: cached[name] for name in UPSTREAM} == dict.fromkeys(UPSTREAM, 3)
    assert {name: ran[name] for name in PER_POINT} == dict.fromkeys(PER_POINT, 4)
    assert len({r["stages"]["train"]["key"] for r in runs}) == 4
    assert len({r["stages"]["split"]["key"] for r in runs}) == 1

    plot = tmp_path / "sweep.png"
    table = invoke("experiment", "compare", exp_id, "--store", str(store), "--plot", str(plot)).stdout
    for run in runs:
        assert run["run_id"] in table
    assert "log_loss (min)" in table
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    ranked = json.loads(invoke("experiment", "compare", exp_id, "--store", str(store), "--json").stdout)
    losses = [row["value"] for row in ranked["rows"]]
    assert [row["rank"] for row in ranked["rows"]] == [1, 2, 3, 4]
    assert losses == sorted(losses), "log_loss: the smallest first"
    by_run = {r["run_id"]: r["metrics"]["log_loss"] for r in runs}
    assert [by_run[row["run_id"]] for row in ranked["rows"]] == losses

    again = invoke("experiment", "run", str(pipeline), "--grid", str(grid), "--store", str(store))
    assert again.stdout.strip().splitlines()[-1] == exp_id
    assert len(records(store)) == 4, "every point was reused: no new run"


class Killed(BaseException):
    """The process dies here (as with Ctrl-C or SIGKILL): nothing after this point of the sweep runs."""


def test_an_interrupted_sweep_resumes_with_its_missing_points_only(shop_sweep, dask_client):
    pipeline, grid, store = shop_sweep
    scheduler = dask_client.scheduler.address

    def killed_in_point_three(point: int, stage: str, event: str, info: dict) -> None:
        if point == 3 and stage == "train" and event == "start":
            raise Killed()

    with pytest.raises(Killed):
        run_experiment_files(pipeline, grid, str(store), scheduler, on_stage=killed_in_point_three)
    shown = json.loads(invoke("experiment", "show", "latest", "--store", str(store), "--json").stdout)
    assert shown["status"] == "interrupted"
    assert [p["status"] for p in shown["points"]] == ["succeeded", "succeeded", "interrupted", "pending"]

    events: list[tuple[int, str]] = []
    record = run_experiment_files(None, None, str(store), scheduler, resume=shown["id"],
                                  on_point=lambda point, event: events.append((point.point, event)))

    assert record.status == "succeeded"
    assert events == [(1, "reused"), (2, "reused"), (3, "start"), (3, "succeeded"), (4, "start"), (4, "succeeded")]
    assert [p.run_id for p in record.points[:2]] == [p["run_id"] for p in shown["points"][:2]]
    runs = {r["run_id"]: r for r in records(store)}
    resumed = runs[record.points[2].run_id]
    assert {name: resumed["stages"][name]["status"] for name in ("split", "train")} == {"split": "cached",
                                                                                       "train": "ran"}
    killed = [r for r in runs.values() if r["parameters"]["point"] == 3 and r["run_id"] != resumed["run_id"]]
    assert [r["status"] for r in killed] == ["running"], "the killed run never finished"
