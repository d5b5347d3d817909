"""The closed loop on one machine, end to end: a real inference server (``dataops serve``, capturing every request
into a local store, with a bearer token and a repository folder), a real pipeline retraining on the shared Dask
cluster, the real watch.

Version 1 learnt the visits before a shift (tests/support/drifting_visits.py: the data end now); a client then
sends visits from after it. Windows are a few seconds of test time (``monitoring.watch.every``), each step is taken
at the end of its window. The watch flags drift on three consecutive windows, retrains as of now, and the challenger
wins on the freshest labelled fortnight: it is loaded while a client thread keeps sending requests (none fails),
then the watch finds the shifted traffic to be no drift for version 2, from a schedule's slot. In a second world the
challenger must beat the champion by a margin it cannot reach: version 1 keeps serving and the reason is kept.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orchestrator.artifacts.local import LocalStore
from orchestrator.cli.main import app as dataops
from orchestrator.loop.decide import NO_DRIFT_CODE, PROMOTED, REJECTED, RETRAIN_CODE
from orchestrator.loop.records import decisions, retrain_history
from orchestrator.registry.models import ModelRegistry
from orchestrator.usecases.run import run_pipeline_file
from orchestrator.usecases.schedules import create_schedule, run_now
from orchestrator.usecases.watch import Watch
from tests.support.drifting_visits import MODEL, inputs, make_visits, records, write_pipeline
from tests.support.loop_windows import WindowedWorld
from tests.support.live_server import BIN, TOKEN, RunningServer, free_port

pytestmark = pytest.mark.integration

EVERY_S = 4
WINDOW_ROWS = 1000  # one capture batch: the server writes it at once
MIN_ROWS = 500


class LocalWorld(WindowedWorld):
    """Visits up to now, version 1 trained before the shift and served, and the watch of that server."""

    def __init__(self, folder: Path, dask_client, margin: float):
        self.folder = folder
        self.now = datetime.now(UTC).replace(microsecond=0)
        shift = make_visits(folder, self.now)
        self.pipeline = write_pipeline(folder, every=f"{EVERY_S}s", windows=3, min_rows=MIN_ROWS, cooldown="1m",
                                       margin=margin)
        self.store_location = str(folder / "store")
        self.scheduler = dask_client.scheduler.address
        run_pipeline_file(self.pipeline, self.store_location, self.scheduler, as_of=shift.isoformat())
        self.store = LocalStore(folder / "store")
        (folder / "repository").mkdir()
        self.token_file = folder / "token"
        self.token_file.write_text(TOKEN + "\n")
        self.server = RunningServer(
            [str(BIN / "dataops"), "serve", f"{MODEL}:1", "--store", self.store_location, "--repository-dir",
             str(folder / "repository"), "--capture-store", self.store_location, "--capture-rate", "1",
             "--range-policy", "flag", "--token-file", str(self.token_file), "--no-access-log"],
            free_port(), folder / "server.log")
        self.server.wait_ready(120)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.watch = Watch(self.pipeline, server=self.url, token_file=self.token_file,
                           repository_dir=folder / "repository", store=self.store_location, scheduler=self.scheduler)
        self.rng = np.random.default_rng(3)
        self.headers = {"Authorization": f"Bearer {TOKEN}"}
        self.start, self.every_s = datetime.fromtimestamp(int(time.time()) + 1, UTC), EVERY_S

    def send(self, rows: int = WINDOW_ROWS, per_request: int = 100) -> None:
        """Shifted visits, as a client after the shift sends them; returns once they are all captured."""
        before = self.captured()
        sent = records(inputs(rows, True, self.rng))
        for first in range(0, rows, per_request):
            status, body = self.server.json("POST", f"/v2/models/{MODEL}/predict",
                                            {"records": sent[first:first + per_request]}, self.headers)
            assert status == 200, body
        self.wait_captured(before + rows, 15, lambda: f" (not captured):\n{self.server.log_text()}")

    def answering(self) -> int:
        status, body = self.server.json("GET", f"/v2/models/{MODEL}", headers=self.headers)
        assert status == 200, body
        return int(body["versions"][0])

    def close(self) -> None:
        self.server.stop()


class Client(threading.Thread):
    """Keeps sending requests until stopped; counts the answers of each version and every failure."""

    def __init__(self, world: LocalWorld):
        super().__init__(daemon=True)
        self.world, self.stop = world, threading.Event()
        self.versions: dict[str, int] = {}
        self.failures: list[str] = []

    def run(self) -> None:
        rows = records(inputs(2000, True, np.random.default_rng(9)))
        index = 0
        while not self.stop.is_set():
            batch = rows[index % 1980: index % 1980 + 20]
            index += 20
            try:
                status, body = self.world.server.json("POST", f"/v2/models/{MODEL}/predict", {"records": batch},
                                                      self.world.headers)
            except OSError as exc:
                self.failures.append(repr(exc))
                continue
            if status != 200:
                self.failures.append(f"HTTP {status}: {body}")
            else:
                self.versions[str(body["model_version"])] = self.versions.get(str(body["model_version"]), 0) + 1
            time.sleep(0.02)


@pytest.fixture
def winning(tmp_path, dask_client):
    world = LocalWorld(tmp_path, dask_client, margin=0.02)
    yield world
    world.close()


@pytest.fixture
def losing(tmp_path, dask_client):
    world = LocalWorld(tmp_path, dask_client, margin=0.9)
    yield world
    world.close()


def test_drift_on_consecutive_windows_retrains_and_the_winner_is_loaded_with_no_failed_request(winning):
    first, second = winning.window(1), winning.window(2)
    assert [first.check["verdict"], second.check["verdict"]] == ["drift", "drift"]
    client = Client(winning)
    client.start()

    third = winning.window(3)

    assert third.decision.code == RETRAIN_CODE and third.comparison.code == "better"
    assert third.retrain.outcome == PROMOTED and third.deployed["version"] == 2
    assert winning.answering() == 2
    # The next whole window after the load: the client's traffic in it is version 2's.
    quiet_at = winning.end_of_window(int((datetime.now(UTC) - winning.start).total_seconds() // EVERY_S) + 2)
    after_load = dict(client.versions)
    client.stop.set()
    client.join(10)
    assert client.failures == [], f"{len(client.failures)} failed requests: {client.failures[:3]}"
    answered = sum(client.versions.values())
    assert after_load.get("1", 0) > 0 and after_load.get("2", 0) > 0, client.versions
    time.sleep(5.5)  # the client's last rows are flushed to the store (every 5 s)

    # The next slot of a watch schedule, for version 2: the shifted traffic is what it learnt.
    schedule = winning.folder / "watch.yaml"
    schedule.write_text(f"name: watch-visits\ncron: '* * * * *'\nscheduler: {winning.scheduler}\nwatch:\n"
                        f"  server: {winning.url}\n  pipeline: pipeline.yaml\n  token_file: token\n"
                        f"  repository_dir: repository\n")
    create_schedule(schedule, winning.store_location, now=quiet_at - timedelta(minutes=1))
    outcome = run_now("watch-visits", winning.store_location, now=quiet_at)

    assert outcome.action == "succeeded", outcome.reason
    quiet = decisions(winning.store, MODEL)[-1]
    assert (quiet.version, quiet.code) == (2, NO_DRIFT_CODE), quiet.reason
    history = CliRunner().invoke(dataops, ["watch", "history", MODEL, "--store", winning.store_location, "--json"])
    assert history.exit_code == 0, history.output
    steps = json.loads(history.stdout)["retrains"][0]["steps"]
    assert [s["step"] for s in steps] == ["drift", "decision", "retrain run", "model version", "comparison",
                                          "approval", "deploy"]

    timings = third.timings
    serving_after = (third.retrain.finished - first.now).total_seconds()
    print(f"\nfirst drifted window ended {first.now:%H:%M:%S}; version 2 served {serving_after:.1f} s later "
          f"(windows 2 and 3: {2 * EVERY_S} s; step 3: {sum(timings.values()):.1f} s = "
          + ", ".join(f"{k} {v:.2f} s" for k, v in timings.items())
          + f"); {answered} client requests, 0 failed ({after_load})")


def test_a_challenger_that_cannot_beat_the_margin_leaves_version_1_serving_with_the_reason(losing):
    losing.window(1), losing.window(2)
    losing.end_of_window(2)
    losing.send()
    now = losing.end_of_window(3)

    result = CliRunner().invoke(dataops, [
        "watch", "--once", "--now", now.isoformat(), "--pipeline", str(losing.pipeline), "--server", losing.url,
        "--token-file", str(losing.token_file), "--repository-dir", str(losing.folder / "repository"),
        "--store", losing.store_location, "--scheduler", losing.scheduler])

    assert result.exit_code == 0, result.output
    (retrain,) = retrain_history(losing.store, MODEL)
    assert retrain.outcome == REJECTED and "less than the margin 0.9" in retrain.details["reason"]
    assert retrain.details["challenger"] == f"{MODEL}:2"
    assert losing.answering() == 1, "version 1 keeps serving"
    assert ModelRegistry(losing.store).versions(MODEL) == [1, 2], "the challenger stays registered"
    assert not any((losing.folder / "repository").iterdir()), "nothing was placed for the server to load"
    assert "less than the margin" in result.output
