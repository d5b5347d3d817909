"""The watch step, on a fake clock of days: the real drift check of captured traffic, the loop's real decisions
and records in a real local store, real retrains of a real pipeline on the shared Dask cluster, the real comparison
on the retrain's fresh holdout. Only what would need a running inference server is stood in for: which version it
answers with, and the versions loaded into it.

The world (tests/support/drifting_visits.py): version 1 learnt visits before a shift of their inputs and of what
makes a visit busy; the traffic it is sent afterwards has shifted.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.local import LocalStore
from orchestrator.cli.main import app as dataops
from orchestrator.loop.decide import (
    Decision,
    AWAITING_APPROVAL,
    COOLDOWN,
    DRIFT_NOT_SUSTAINED,
    NO_DRIFT_CODE,
    PROMOTED,
    REJECTED,
    RETRAIN_CODE,
    RETRAIN_RUNNING,
    WAITING,
)
from orchestrator.loop.records import claim_retrain, comparisons, decisions, record_decision, retrain_history
from orchestrator.registry.models import ModelRegistry
from orchestrator.usecases.run import run_pipeline_file
from orchestrator.usecases.watch import (
    CLAIMED_ELSEWHERE,
    NothingToApprove,
    RetrainFailed,
    Watch,
    approve_retrain,
    pending_approval,
    watch_step,
)
from orchestrator.usecases.watch_history import loop_mention, model_loop_mention, watch_history
from orchestrator.usecases.watch_targets import EndpointTarget, ServedModel, WatchTargetError
from tests.support.drifting_visits import MODEL, inputs, make_visits, write_captures, write_pipeline

pytestmark = pytest.mark.integration

END = datetime(2027, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)
WINDOW_ROWS = 800


@dataclass
class StandInServer:
    """The boundary a running inference server would be: the version it answers with, the versions loaded."""

    model: str
    version: int
    loaded: list[int] = field(default_factory=list)
    kind: str = "server"
    # Set: this machine cannot deploy to it (a runner watching an endpoint deployed from elsewhere), and why.
    elsewhere: str | None = None

    def served(self) -> ServedModel:
        return ServedModel(self.model, self.version)

    def not_deployable_here(self) -> str | None:
        return self.elsewhere

    def deploy(self, store, store_location, model, version) -> dict:
        ModelRegistry(store).folder(f"{model}:{version}", verify=True)  # what a server would be given
        self.loaded.append(version)
        self.version = version
        return {"model": model, "version": version, "server": "stand-in", "status": "succeeded",
                "deployed_at": END.isoformat(), "seconds": 0.0}

    def describe(self) -> dict:
        return {"kind": "server", "server": "http://127.0.0.1:9", "model": self.model}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, dask_client):
    """Version 1, trained on the split window before the shift, in a store kept as a template."""
    folder = tmp_path_factory.mktemp("visits")
    shift = make_visits(folder, END)
    path = write_pipeline(folder)
    run_pipeline_file(path, str(folder / "store"), dask_client.scheduler.address, as_of=shift.isoformat())
    return folder


@dataclass
class World:
    folder: Path
    store: LocalStore
    server: StandInServer
    watch: Watch
    rng: np.random.Generator

    def pipeline(self, **policy) -> None:
        write_pipeline(self.folder, **policy)

    def day(self, n: int, shifted: bool = True, rows: int = WINDOW_ROWS, target=None):
        """Day ``n`` before END (0 is END): traffic of the last 24 hours captured, then a watch step."""
        now = END - n * DAY
        folder = ModelRegistry(self.store).folder(f"{MODEL}:{self.server.version}")
        write_captures(self.store, folder, inputs(rows, shifted, self.rng), now - timedelta(hours=12))
        return watch_step(self.watch, now, target=target or self.server)


@pytest.fixture
def world(trained, tmp_path, dask_client) -> World:
    folder = tmp_path / "visits"
    shutil.copytree(trained, folder)
    watch = Watch(folder / "pipeline.yaml", server="http://127.0.0.1:9", store=str(folder / "store"),
                  scheduler=dask_client.scheduler.address)
    return World(folder, LocalStore(folder / "store"), StandInServer(MODEL, 1), watch, np.random.default_rng(1))


def test_sustained_drift_retrains_on_fresh_rows_and_the_winner_serves_then_the_watch_goes_quiet(world):
    first, second = world.day(3), world.day(2)
    assert [first.decision.code, second.decision.code] == [DRIFT_NOT_SUSTAINED, DRIFT_NOT_SUSTAINED]
    third = world.day(1)

    assert third.decision.code == RETRAIN_CODE and len(third.decision.drifted_ids) == 3
    assert third.comparison.winner == "challenger" and third.comparison.code == "better"
    assert third.step == "deploy" and world.server.loaded == [2]
    assert third.retrain.outcome == PROMOTED and third.retrain.details["challenger"] == f"{MODEL}:2"
    assert ModelRegistry(world.store).stages(MODEL)["production"] == 2
    record = load_record(world.store, third.run_id)
    assert record["parameters"]["as_of"] == "2027-05-31T00:00:00Z", "the retrain is for the step's time"
    assert record["parameters"]["loop"] == {"target": MODEL, "retrain": 1, "decision": third.decision.id}
    holdout = third.comparison.holdout
    assert holdout["run_id"] == third.run_id and (holdout["from"], holdout["until"]) == (
        "2027-05-17T00:00:00Z", "2027-05-31T00:00:00Z"), "the holdout is the freshest labelled fortnight"
    assert holdout["champion_trained_until"] < holdout["from"], "the champion never saw the holdout"
    assert third.comparison.champion_value < 0.6 and third.comparison.challenger_value > 0.85
    assert set(third.timings) == {"check", "decide", "retrain_run", "compare", "deploy"}

    after = world.day(0)  # the shifted traffic is the new normal: version 2 learnt it
    assert after.served == f"{MODEL}:2" and after.check["verdict"] == "no_drift"
    assert after.decision.code == NO_DRIFT_CODE and after.decision.check_ids == (after.check["id"],)
    assert after.retrain is None

    made = decisions(world.store, MODEL)
    assert [d.code for d in made] == [DRIFT_NOT_SUSTAINED, DRIFT_NOT_SUSTAINED, RETRAIN_CODE, NO_DRIFT_CODE]
    assert all(d.check_ids for d in made), "every decision names the checks it counted"
    lineage = watch_history(MODEL, str(world.folder / "store"))["retrains"][0]["steps"]
    assert [s["step"] for s in lineage] == ["drift", "decision", "retrain run", "model version", "comparison",
                                             "approval", "deploy"]
    assert lineage[3]["ref"] == f"{MODEL}:2" and lineage[5]["text"].startswith("auto")
    assert loop_mention(world.store, record).startswith(f"retrain 1 of watch {MODEL}")
    assert model_loop_mention(world.store, ModelRegistry(world.store).card(f"{MODEL}:2")).startswith("retrain 1")
    assert model_loop_mention(world.store, ModelRegistry(world.store).card(f"{MODEL}:1")) is None


def test_one_drifted_window_among_clean_ones_starts_nothing(world):
    reports = [world.day(3, shifted=False), world.day(2, shifted=True), world.day(1, shifted=False)]

    assert [r.check["verdict"] for r in reports] == ["no_drift", "drift", "no_drift"]
    assert [r.decision.code for r in reports] == [NO_DRIFT_CODE, DRIFT_NOT_SUSTAINED, DRIFT_NOT_SUSTAINED]
    assert retrain_history(world.store, MODEL) == []
    assert len(list_run_ids(world.store)) == 1, "no run but version 1's"


def test_two_runners_deciding_on_the_same_drift_start_one_retrain(world):
    world.day(3), world.day(2)
    folder = ModelRegistry(world.store).folder(f"{MODEL}:1")
    write_captures(world.store, folder, inputs(WINDOW_ROWS, True, world.rng), END - DAY - timedelta(hours=12))
    reports, start = [], threading.Barrier(2)

    def runner():
        start.wait()
        reports.append(watch_step(world.watch, END - DAY, target=StandInServer(MODEL, 1)))

    threads = [threading.Thread(target=runner) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    assert len(reports) == 2
    assert len(retrain_history(world.store, MODEL)) == 1
    started = [r for r in reports if r.run_id is not None]
    assert len(started) == 1, "exactly one runner ran the retrain"
    other = next(r for r in reports if r.run_id is None)
    assert other.step == CLAIMED_ELSEWHERE or other.decision.code == RETRAIN_RUNNING
    assert len([run for run in list_run_ids(world.store) if load_record(world.store, run)["parameters"].get("loop")
                ]) == 1


def test_a_retrain_whose_run_fails_is_recorded_failed_with_its_run_and_its_cooldown_runs(world):
    world.day(3), world.day(2)
    (world.folder / "visits.csv").rename(world.folder / "visits.moved")

    with pytest.raises(RetrainFailed, match="retrain 1 of visits-busy failed: .*visits.csv") as failed:
        world.day(1)

    (retrain,) = retrain_history(world.store, MODEL)
    assert retrain.outcome == "failed" and retrain.finished is not None
    assert retrain.details["run_id"] == failed.value.run_id
    assert load_record(world.store, retrain.details["run_id"])["status"] == "failed"
    assert world.server.loaded == []
    assert world.day(0).decision.code == COOLDOWN, "a failed retrain ends, and its cooldown starts"


def test_a_retrain_whose_process_was_killed_ends_failed_at_its_deadline_instead_of_blocking_the_loop(world):
    world.day(3), world.day(2)
    # A runner decided a retrain, claimed it and was SIGKILLed: the claim stays 'running', nothing else ends it.
    started = END - DAY - timedelta(hours=2)
    decided = record_decision(world.store, MODEL, Decision("retrain", RETRAIN_CODE, "sustained drift", started,
                                                           MODEL, 1, retrain=1))
    assert claim_retrain(world.store, MODEL, decided, {"pipeline": "killed"}).outcome == "running"
    blocked = world.day(1)
    assert blocked.decision.code == RETRAIN_RUNNING and world.server.loaded == [], \
        "within its deadline (12h) a retrain blocks the next"

    unblocked = world.day(0)  # more than 12 hours after it started
    (lapsed,) = retrain_history(world.store, MODEL)
    assert lapsed.outcome == "failed" and "its process was lost" in lapsed.details["reason"]
    assert unblocked.decision.code == COOLDOWN, "the lapsed retrain ended, and its cooldown started"


def test_a_challenger_below_the_margin_stays_registered_never_deployed_with_the_reason(world):
    world.pipeline(margin=0.9)
    world.day(3), world.day(2)

    third = world.day(1)

    assert third.comparison.code == "below_margin" and third.step == "keep_champion"
    assert world.server.loaded == [] and world.server.version == 1
    assert ModelRegistry(world.store).versions(MODEL) == [1, 2], "the challenger is registered"
    assert "production" not in ModelRegistry(world.store).stages(MODEL)
    (retrain,) = retrain_history(world.store, MODEL)
    assert retrain.outcome == REJECTED and "less than the margin 0.9" in retrain.details["reason"]
    assert comparisons(world.store, MODEL)[0].id == retrain.details["comparison"]
    steps = watch_history(MODEL, str(world.folder / "store"))["retrains"][0]["steps"]
    assert steps[-1]["step"] == "deploy" and steps[-1]["text"].startswith("not deployed: the challenger is better")


def test_with_manual_approval_the_winner_waits_blocks_retrains_and_serves_once_approved(world):
    world.pipeline(approval="manual")
    world.day(3), world.day(2)

    third = world.day(1)
    assert third.step == "await_approval" and third.retrain.outcome == WAITING and world.server.loaded == []
    assert world.day(0).decision.code == AWAITING_APPROVAL
    shown = []

    retrain = approve_retrain(MODEL, str(world.folder / "store"), now=END, on_pending=shown.append,
                              served_by=world.server)

    assert shown[0].comparison.id == third.comparison.id, "the comparison is shown before the deploy"
    assert retrain.outcome == PROMOTED and retrain.details["approval"] == "manual"
    assert world.server.loaded == [2] and ModelRegistry(world.store).stages(MODEL)["production"] == 2
    with pytest.raises(NothingToApprove):
        approve_retrain(MODEL, str(world.folder / "store"), served_by=world.server)


def test_a_winner_the_watch_cannot_deploy_from_where_it_runs_is_handed_over_for_approval_not_failed(world):
    # approval: auto, but the watch runs where the target's deploy cannot (a runner VM, the endpoint's keys on the
    # operator's machine): the comparison stands, and the winner waits for an approval given where it can.
    world.server.elsewhere = "endpoint far-away is not held by this machine"
    world.day(3), world.day(2)

    third = world.day(1)

    assert third.comparison.winner == "challenger" and third.step == "await_approval"
    assert third.retrain.outcome == WAITING and world.server.loaded == []
    assert third.retrain.details["handed_over"] == "endpoint far-away is not held by this machine"
    assert world.day(0).decision.code == AWAITING_APPROVAL, "one retrain at a time: the next waits for it"
    world.server.elsewhere = None  # the operator's machine
    retrain = approve_retrain(MODEL, str(world.folder / "store"), now=END, served_by=world.server)
    assert retrain.outcome == PROMOTED and world.server.loaded == [2]


def test_a_rejected_challenger_is_never_deployed_and_the_reason_is_kept(world):
    world.pipeline(approval="manual")
    world.day(3), world.day(2), world.day(1)

    result = CliRunner().invoke(dataops, ["reject", MODEL, "--reason", "the holdout fortnight held a holiday",
                                          "--store", str(world.folder / "store")])

    assert result.exit_code == 0, result.output
    assert f"challenger {MODEL}:2 against {MODEL}:1" in result.output, "the comparison is shown first"
    assert "roc_auc: challenger 0.8" in result.output and "champion 0.5" in result.output
    assert "rows from 2027-05-17T00:00:00Z to 2027-05-31T00:00:00Z" in result.output
    (retrain,) = retrain_history(world.store, MODEL)
    assert retrain.outcome == REJECTED and retrain.details["reason"].endswith(": the holdout fortnight held a holiday")
    assert world.server.loaded == []
    with pytest.raises(NothingToApprove):
        pending_approval(MODEL, str(world.folder / "store"))


def test_an_endpoint_this_machine_does_not_hold_is_not_deployed_to_and_the_error_says_where_to_run(tmp_path,
                                                                                                   monkeypatch):
    from orchestrator.artifacts.records import SharedRecords
    from orchestrator.usecases import clusters

    monkeypatch.setenv("DATAOPS_ENDPOINTS_DIR", str(tmp_path / "endpoints"))
    monkeypatch.setattr(clusters, "open_records", lambda name, kind: SharedRecords(LocalStore(tmp_path / "rec"), kind))

    with pytest.raises(WatchTargetError, match="endpoint far-away is not held by this machine, and its nodes do not "
                                               "follow its store .* on the machine that ran `dataops deploy`"):
        EndpointTarget("far-away").deploy(LocalStore(tmp_path / "store"), str(tmp_path / "store"), MODEL, 2)
