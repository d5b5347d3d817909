"""The closed loop, run: one watch step for a target (a schedule slot, or one turn of ``dataops watch``), the loop
that repeats it, and a person's approval or rejection of a challenger waiting for one.

A step, at ``now``:

1. reads the version the target serves (an endpoint's last deploy, or what a local server answers with);
2. checks the drift of its captures of the last interval (``monitoring.watch.every`` of the pipeline file);
3. decides on the served version's recent checks and the retrain history, and records the decision (every one);
4. on ``retrain``, claims the retrain (create-only: two runners deciding at once start one) and runs the pipeline
   file with ``as_of`` = the step's time, whose split window makes the freshest labelled rows the test partition;
   its register stage registers the challenger;
5. holds the challenger against the champion on that partition (``watch_compare``) and records the comparison;
6. deploys a winner (``auto``), leaves it waiting for ``dataops approve`` (``manual``), or keeps the champion with
   the reason; the retrain record ends ``promoted``, ``awaiting_approval``, ``rejected`` or ``failed`` (a retrain
   never stays ``running`` because something after the claim went wrong).

Once a challenger serves, the checks that count are those of its version, against its own reference profile: the
loop settles on the new distribution.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.artifacts.lineage import list_run_ids, load_record
from orchestrator.artifacts.open import open_store
from orchestrator.artifacts.store import ArtifactStore
from orchestrator.config import setting
from orchestrator.durations import format_duration, parse_duration
from orchestrator.errors import DataopsError, SpecError
from orchestrator.loop.compare import AWAIT_APPROVAL, DEPLOY, Comparison, next_step
from orchestrator.loop.decide import FAILED, PROMOTED, REJECTED, RUNNING, WAITING, Decision, Retrain, Served
from orchestrator.loop.records import (
    claim_retrain,
    comparisons,
    iso,
    load_retrain,
    record_comparison,
    record_decision,
    retrain_history,
    update_retrain,
)
from orchestrator.loop.state import decide_from_store
from orchestrator.pipeline.spec import LoadedPipeline, load_pipeline
from orchestrator.registry.models import ModelRegistry
from orchestrator.scheduling.spec import ScheduleSpec
from orchestrator.scheduling.tick import ExecutionResult
from orchestrator.usecases.drift import check_model_drift
from orchestrator.usecases.watch_targets import EndpointTarget, ServerTarget, Target, target_from_record

# How far back a failed retrain's run record is looked for, newest first (a run writes its record as it starts).
RECENT_RUNS = 20
CLAIMED_ELSEWHERE = "claimed_elsewhere"
SAME_MODEL = "same_model"
PRODUCTION = "production"


class RetrainFailed(DataopsError):
    """A retrain the loop started did not end in a comparison (its run failed, or its deploy did); it is recorded
    ``failed`` with the reason, and its cooldown runs."""

    exit_code = 26

    def __init__(self, message: str, run_id: str | None = None):
        super().__init__(message)
        self.run_id = run_id


class NothingToApprove(DataopsError):
    """No challenger of the watch waits for approval."""

    exit_code = 27


@dataclass(frozen=True)
class Watch:
    """What a watch follows and how it retrains.

    Attributes:
        pipeline: The pipeline file: its ``monitoring:`` is the loop's policy, a run of it is a retrain.
        endpoint: The endpoint served (exclusive with ``server``).
        server: A local server's base URL.
        token_file: The server's bearer token file.
        repository_dir: The server's ``--repository-dir``, where a winning challenger is placed for it to load.
        target: The name the loop's records are kept under; default the endpoint, else the pipeline's model.
        store: The store of the registry, the captures, the checks and the loop's records; default the endpoint's
            store, else the ``store`` setting.
        capture_dir: The server's ``--capture-dir``, when it captures to a folder rather than to the store.
        scheduler: The Dask scheduler retrains run on (else the ``scheduler`` setting, else a LocalCluster).
        cluster: A cluster made by ``dataops cluster create``, instead.
        as_of: The time every retrain is for, when the data's clock is not the wall clock (a replayed history);
            default: the step's time.
    """

    pipeline: Path
    endpoint: str | None = None
    server: str | None = None
    token_file: Path | None = None
    repository_dir: Path | None = None
    target: str | None = None
    store: str | None = None
    capture_dir: Path | None = None
    scheduler: str | None = None
    cluster: str | None = None
    as_of: datetime | None = None

    def __post_init__(self) -> None:
        if (self.endpoint is None) == (self.server is None):
            raise DataopsError("a watch follows one endpoint (--endpoint NAME) or one local server (--server URL)")


@dataclass
class WatchReport:
    """What one step did.

    Attributes:
        target: The records' target name.
        served: The version checked, ``name:version``.
        now: The step's time.
        check: The drift check of the interval: ``id``, ``verdict``, ``rows``.
        decision: The decision, as recorded.
        retrain: The retrain started, as it ended (None: none started).
        run_id: The retrain's run.
        challenger: The version it registered.
        comparison: Champion against challenger, as recorded.
        step: ``deploy``, ``await_approval``, ``keep_champion``, ``same_model``, or ``claimed_elsewhere`` when
            another runner started the retrain first.
        deployed: The deploy record of a promoted challenger.
        timings: Seconds spent: ``check``, ``decide``, ``retrain_run``, ``compare``, ``deploy``.
    """

    target: str
    served: str
    now: datetime
    check: dict
    decision: Decision
    retrain: Retrain | None = None
    run_id: str | None = None
    challenger: str | None = None
    comparison: Comparison | None = None
    step: str | None = None
    deployed: dict | None = None
    timings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"target": self.target, "served": self.served, "now": iso(self.now), "check": self.check,
                "decision": {"id": self.decision.id, "action": self.decision.action, "code": self.decision.code,
                             "reason": self.decision.reason, "check_ids": list(self.decision.check_ids)},
                "retrain": None if self.retrain is None else {"number": self.retrain.number,
                                                              "outcome": self.retrain.outcome},
                "run_id": self.run_id, "challenger": self.challenger,
                "comparison": None if self.comparison is None else {
                    "id": self.comparison.id, "winner": self.comparison.winner, "code": self.comparison.code,
                    "reason": self.comparison.reason},
                "step": self.step, "deployed": self.deployed, "timings": self.timings}


class _Clock:
    """The step's time, moving on with the real time spent since the step began (records of one step stay in
    order, and a fake start time stays fake)."""

    def __init__(self, now: datetime):
        self.start, self._t0 = now, time.monotonic()

    def __call__(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self._t0)


def target_name(watch: Watch, loaded: LoadedPipeline) -> str:
    """The name the loop's records are kept under."""
    if watch.target:
        return watch.target
    if watch.endpoint:
        return watch.endpoint
    if loaded.spec.model is None:
        raise DataopsError(f"{watch.pipeline} trains no model (no `model:` section): a watch retrains with it")
    return loaded.spec.model.name


def open_target(watch: Watch, loaded: LoadedPipeline) -> Target:
    """The endpoint or the local server the watch follows."""
    if watch.endpoint:
        return EndpointTarget(watch.endpoint)
    return ServerTarget(watch.server, loaded.spec.model.name, watch.token_file, watch.repository_dir)


def _served_since(store: ArtifactStore, target: str, model: str, version: int, since: datetime | None
                  ) -> datetime | None:
    """Since when ``model:version`` serves: its deploy, or its promotion by this loop, whichever is later."""
    promoted = [r.finished for r in retrain_history(store, target)
                if r.outcome == PROMOTED and r.finished and r.details.get("challenger") == f"{model}:{version}"]
    known = [t for t in [since, *promoted] if t is not None]
    return max(known) if known else None


def _loop_run_id(store: ArtifactStore, target: str, number: int) -> str | None:
    """The run of retrain ``number``, if it got as far as writing its record."""
    for run_id in reversed(list_run_ids(store)[-RECENT_RUNS:]):
        loop = load_record(store, run_id).get("parameters", {}).get("loop") or {}
        if loop.get("target") == target and loop.get("retrain") == number:
            return run_id
    return None


@contextmanager
def _timed(timings: dict, name: str) -> Iterator[None]:
    """Add the seconds the block takes to ``timings[name]`` (also when it raises)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round(timings.get(name, 0.0) + time.perf_counter() - t0, 3)


def watch_step(watch: Watch, now: datetime | None = None, target: Target | None = None,
               on_step: Callable[[str], None] | None = None) -> WatchReport:
    """One step of the watch at ``now``: check, decide, and on a retrain decision retrain, compare and deploy.

    Args:
        watch: What is watched and how it retrains.
        now: The step's time (a schedule's slot; tests); default the clock. The check's window is the interval
            ending then.
        target: The endpoint or server (tests give one); default the one ``watch`` names.
        on_step: Told what the step is doing, in a sentence.

    Returns:
        What the step did and how long each part took.

    Raises:
        RetrainFailed: the retrain started but its run or its deploy failed (recorded ``failed``).
        WatchTargetError: the target cannot be read (or, for a deploy, updated) from here.
        SpecError: the pipeline file is malformed.
    """
    tell = on_step or (lambda message: None)
    clock = _Clock((now or datetime.now(UTC)).astimezone(UTC))
    now = clock.start
    loaded = load_pipeline(watch.pipeline)
    if loaded.spec.model is None:
        raise DataopsError(f"{watch.pipeline} trains no model (no `model:` section): a watch retrains with it")
    policy = loaded.spec.monitoring
    name = target_name(watch, loaded)
    target = target or open_target(watch, loaded)
    timings: dict = {}

    with _timed(timings, "check"):
        served = target.served()
        if served.model != loaded.spec.model.name:
            raise DataopsError(f"{watch.endpoint or watch.server} serves {served.model}:{served.version}, but "
                               f"{watch.pipeline} trains {loaded.spec.model.name}: a watch retrains the model served")
        store_location = setting("store", watch.store or served.store)
        store = open_store(store_location)
        every = timedelta(seconds=policy.watch.every_s)
        ref = f"{served.model}:{served.version}"
        tell(f"checking the captures of {ref} from {iso(now - every)} to {iso(now)}")
        check = check_model_drift(ref, endpoint=watch.endpoint, since=(now - every).isoformat(),
                                  until=now.isoformat(), store=store_location, capture_dir=watch.capture_dir,
                                  now=now)
    checked = {"id": check.record["check_id"], "verdict": check.result.verdict, "rows": check.result.rows}

    with _timed(timings, "decide"):
        _fail_lapsed_retrains(store, name, policy.retrain.run_deadline_s, now)
        since = _served_since(store, name, served.model, served.version, served.since)
        decision = decide_from_store(store, name, Served(served.model, served.version, since), policy, now)
        decision = record_decision(store, name, decision)
    report = WatchReport(name, ref, now, checked, decision, timings=timings)
    tell(f"decision {decision.code}: {decision.reason}")
    if not decision.retrains:
        return report

    # To the second, as a schedule's slot is: a retried step finds the retrain's stages in the cache.
    as_of = (watch.as_of or now).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    retrain = claim_retrain(store, name, decision, {
        "pipeline": str(Path(watch.pipeline).resolve()), "as_of": as_of, "store": store_location,
        "target": target.describe(), "champion": ref})
    if retrain is None:
        report.step = CLAIMED_ELSEWHERE
        tell(f"retrain {decision.retrain} was started by another runner")
        return report
    report.retrain = retrain
    try:
        return _retrain(watch, loaded, store, store_location, name, target, retrain, as_of, ref, clock, report, tell)
    except BaseException as exc:
        # Whatever went wrong after the claim, the retrain ends: one left 'running' would block every later one.
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc)
        run_id = report.run_id or _loop_run_id(store, name, retrain.number)
        if load_retrain(store, name, retrain.number).in_flight:
            report.retrain = update_retrain(store, name, retrain.number, FAILED, clock(), reason=reason,
                                            run_id=run_id)
        if isinstance(exc, DataopsError):
            raise RetrainFailed(f"retrain {retrain.number} of {name} failed: {exc}", run_id) from exc
        raise


def _fail_lapsed_retrains(store: ArtifactStore, target: str, deadline_s: float, now: datetime) -> None:
    """End as failed a retrain still running past the deadline: its process was killed or its host lost (the step
    that claimed it records any other ending itself), and one left running would block every later retrain."""
    for retrain in retrain_history(store, target):
        if retrain.outcome == RUNNING and (now - retrain.started).total_seconds() > deadline_s:
            update_retrain(store, target, retrain.number, FAILED, now,
                           reason=f"no outcome {format_duration(deadline_s)} after it started at "
                                  f"{iso(retrain.started)}: its process was lost")


def _retrain(watch: Watch, loaded: LoadedPipeline, store: ArtifactStore, store_location: str, name: str,
             target: Target, retrain: Retrain, as_of: str, champion: str, clock: _Clock, report: WatchReport,
             tell: Callable[[str], None]) -> WatchReport:
    from orchestrator.usecases.run import run_pipeline_file
    from orchestrator.usecases.watch_compare import compare_on_holdout

    timings = report.timings
    policy, spec = loaded.spec.monitoring, loaded.spec.model
    tell(f"retrain {retrain.number}: running {watch.pipeline} as of {as_of}")
    with _timed(timings, "retrain_run"):
        result = run_pipeline_file(Path(watch.pipeline), store_location, watch.scheduler, watch.cluster, as_of=as_of,
                                   run_parameters={"loop": {"target": name, "retrain": retrain.number,
                                                            "decision": retrain.decision_id}})
    report.run_id = result.run_id
    registered = result.record.get("stages", {}).get("register") or {}
    if "version" not in registered:
        raise DataopsError(f"run {result.run_id} registered no model: a retrain needs the pipeline's register stage")
    challenger = f"{registered['model']}:{registered['version']}"
    report.challenger = challenger
    if challenger == champion:
        report.step = SAME_MODEL
        report.retrain = update_retrain(
            store, name, retrain.number, REJECTED, clock(), run_id=result.run_id, challenger=challenger,
            reason=f"the retrain made {champion} again (the same ONNX graph from the same training data): nothing "
                   "to compare")
        return report

    tell(f"comparing {challenger} with {champion} on the fresh holdout of run {result.run_id}")
    with _timed(timings, "compare"):
        comparison = compare_on_holdout(store, policy, spec, champion, challenger, result.record)
        comparison = record_comparison(store, name, comparison, clock())
    report.comparison = comparison
    report.step = next_step(comparison, policy.retrain.approval)
    tell(f"{comparison.winner} wins ({comparison.code}): {comparison.reason}")
    details = {"run_id": result.run_id, "challenger": challenger, "comparison": comparison.id,
               "code": comparison.code}
    if report.step == DEPLOY and (elsewhere := target.not_deployable_here()):
        # A watch run where the target cannot be reached (a runner VM watching an endpoint deployed from the
        # operator's machine) hands the winner over rather than failing it: it waits for an approval given where
        # the deploy can run, the comparison already done and kept.
        report.step = AWAIT_APPROVAL
        details["handed_over"] = elsewhere
    if report.step == DEPLOY:
        with _timed(timings, "deploy"):
            report.deployed = promote(store, store_location, target, challenger, tell)
        report.retrain = update_retrain(store, name, retrain.number, PROMOTED, clock(), approval="auto",
                                        deploy=report.deployed, **details)
    elif report.step == AWAIT_APPROVAL:
        report.retrain = update_retrain(store, name, retrain.number, WAITING, clock(), **details)
        tell(f"{challenger} waits for `dataops approve {name}` (or `dataops reject {name}`)")
    else:
        report.retrain = update_retrain(store, name, retrain.number, REJECTED, clock(), reason=comparison.reason,
                                        **details)
    return report


def promote(store: ArtifactStore, store_location: str, target: Target, challenger: str,
            tell: Callable[[str], None] = lambda message: None) -> dict:
    """Serve ``challenger`` on the target, then point the registry's production stage at it.

    Returns:
        The deploy record.
    """
    model, version = ModelRegistry(store).resolve(challenger)
    tell(f"deploying {challenger}")
    deployed = target.deploy(store, store_location, model, version)
    ModelRegistry(store).promote(f"{model}:{version}", PRODUCTION)
    return deployed


def watch_slot(spec: ScheduleSpec, pipeline: Path, slot: datetime, home_store: str) -> ExecutionResult:
    """A slot of a watch schedule: one step at the slot's time (the window ends there, a retrain is for it).

    Args:
        spec: The schedule (its ``watch``; ``store``, ``scheduler`` and ``cluster`` apply to the retrains).
        pipeline: The watch's pipeline file as kept with the schedule.
        slot: The slot's time.
        home_store: The store the schedule is kept in: a local server's records go there unless the schedule
            names another store; an endpoint's go to the store it was deployed from.

    Raises:
        SlotRunFailed: the step failed; a failed retrain is not retried (its cooldown runs).
    """
    from orchestrator.scheduling.tick import SlotRunFailed

    watched = spec.watch
    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    watch = Watch(pipeline, endpoint=watched.endpoint, server=watched.server, token_file=path(watched.token_file),
                  repository_dir=path(watched.repository_dir), target=watched.target,
                  store=spec.store or (None if watched.endpoint else home_store),
                  capture_dir=path(watched.capture_dir), scheduler=spec.scheduler, cluster=spec.cluster)
    try:
        report = watch_step(watch, slot)
    except RetrainFailed as exc:
        raise SlotRunFailed(str(exc), exc.run_id, retryable=False) from exc
    except DataopsError as exc:
        raise SlotRunFailed(str(exc), retryable=not isinstance(exc, SpecError)) from exc
    return ExecutionResult(report.run_id, detail=report.to_dict())


# ---- a person's word ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pending:
    """The retrain waiting for approval, and the comparison it waits on."""

    target: str
    retrain: Retrain
    comparison: Comparison | None


def records_store(target: str, store: str | None = None) -> ArtifactStore:
    """The store holding a watch's records: ``store``, else the endpoint's own store if ``target`` is an endpoint
    of this machine, else the ``store`` setting."""
    if store is None:
        from orchestrator.deploy.state import endpoint_state

        state = endpoint_state(target)
        if state.exists():
            store = state.load().get("store")
    return open_store(setting("store", store))


def pending_approval(target: str, store: str | None = None) -> Pending:
    """The retrain of ``target`` whose challenger waits for a person.

    Raises:
        NothingToApprove: none waits.
    """
    artifact_store = records_store(target, store)
    waiting = [r for r in retrain_history(artifact_store, target) if r.outcome == WAITING and r.finished is None]
    if not waiting:
        raise NothingToApprove(f"no challenger of {target} waits for approval in {artifact_store.uri} "
                               "(`dataops watch history` shows what the loop did)")
    retrain = waiting[-1]
    wanted = retrain.details.get("comparison")
    found = next((c for c in comparisons(artifact_store, target) if c.id == wanted), None)
    return Pending(target, retrain, found)


def approve_retrain(target: str, store: str | None = None, now: datetime | None = None,
                    on_pending: Callable[[Pending], None] | None = None,
                    on_step: Callable[[str], None] | None = None, served_by: Target | None = None) -> Retrain:
    """Deploy the challenger waiting for approval, as the watch would have (the target its record describes).

    Args:
        target: The watch's target.
        store: The store of its records.
        now: The approval's time (tests); default the clock.
        on_pending: Shown the retrain and its comparison before anything is deployed.
        on_step: Told what happens, in a sentence.
        served_by: The endpoint or server to deploy to (tests give one); default the one the retrain's record
            describes.

    Returns:
        The retrain, ``promoted``.

    Raises:
        NothingToApprove: no challenger waits.
        RetrainFailed: the deploy failed (the retrain is recorded ``failed``, the champion keeps serving).
    """
    pending = pending_approval(target, store)
    if on_pending:
        on_pending(pending)
    retrain = pending.retrain
    artifact_store = records_store(target, store)
    store_location = retrain.details.get("store") or artifact_store.uri
    at = (now or datetime.now(UTC)).astimezone(UTC)
    approval = {"by": getpass.getuser(), "at": iso(at)}
    try:
        deployed = promote(artifact_store, store_location, served_by or target_from_record(retrain.details["target"]),
                           retrain.details["challenger"], on_step or (lambda message: None))
    except DataopsError as exc:
        update_retrain(artifact_store, target, retrain.number, FAILED, at, approval="manual", approved=approval,
                       reason=f"approved, but the deploy failed: {exc}")
        raise RetrainFailed(f"retrain {retrain.number} of {target}: approved, but the deploy failed: {exc}") from exc
    return update_retrain(artifact_store, target, retrain.number, PROMOTED, at, approval="manual",
                          approved=approval, deploy=deployed)


def reject_retrain(target: str, reason: str | None = None, store: str | None = None, now: datetime | None = None,
                   on_pending: Callable[[Pending], None] | None = None) -> Retrain:
    """Keep the champion: the waiting challenger stays registered, never deployed, with the person's reason.

    Raises:
        NothingToApprove: no challenger waits.
    """
    pending = pending_approval(target, store)
    if on_pending:
        on_pending(pending)
    at = (now or datetime.now(UTC)).astimezone(UTC)
    by = getpass.getuser()
    return update_retrain(records_store(target, store), target, pending.retrain.number, REJECTED, at,
                          approval="manual", rejected={"by": by, "at": iso(at)},
                          reason=f"rejected by {by}" + (f": {reason}" if reason else ""))


# ---- the loop -------------------------------------------------------------------------------------------------
def watch_interval(watch: Watch, every: str | None = None) -> float:
    """Seconds between steps: ``every``, else the pipeline's ``monitoring.watch.every``."""
    if every:
        return parse_duration(every, "--every")
    return load_pipeline(watch.pipeline).spec.monitoring.watch.every_s


def run_watch_loop(watch: Watch, every: str | None = None, *, once: bool = False, now: datetime | None = None,
                   steps: int | None = None,
                   on_report: Callable[[WatchReport], None] | None = None,
                   on_error: Callable[[str], None] | None = None,
                   on_step: Callable[[str], None] | None = None,
                   wall_clock: Callable[[], float] = time.time,
                   sleep: Callable[[float], None] = time.sleep) -> int:
    """Step the watch now, then at every multiple of the interval on the clock, until interrupted.

    Args:
        watch: What is watched.
        every: The interval between steps (default the policy's ``watch.every``, which is each window's length
            whatever the interval: a window is never counted twice).
        once: One step, at ``now``; its error is raised, not reported.
        now: The time of the single step of ``once`` (tests, a replayed history); default the clock.
        steps: Stop after this many steps (tests); default: until interrupted.
        on_report: Told each step's report.
        on_error: Told the message of a step that failed (the loop goes on: the next interval is another chance).
        on_step: Told what each step is doing.
        wall_clock: Seconds since the epoch (tests).
        sleep: How to wait (tests).

    Returns:
        The number of steps that ran to the end.
    """
    if once:
        report = watch_step(watch, now, on_step=on_step)
        if on_report:
            on_report(report)
        return 1
    every_s = watch_interval(watch, every)
    done = taken = 0
    at = wall_clock()
    while steps is None or taken < steps:
        taken += 1
        try:
            report = watch_step(watch, datetime.fromtimestamp(at, UTC), on_step=on_step)
            done += 1
            if on_report:
                on_report(report)
        except DataopsError as exc:
            if on_error:
                on_error(str(exc))
        if steps is not None and taken >= steps:
            break
        # Steps fall on multiples of the interval since the epoch: windows follow each other without a gap.
        at = (int(wall_clock() // every_s) + 1) * every_s
        sleep(max(0.0, at - wall_clock()))
    return done
