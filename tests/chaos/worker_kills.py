"""SIGKILL of a Dask worker process while a chosen stage of a run computes, decided by the scheduler itself.

A ``LocalCluster``'s scheduler runs in the test's process, so a scheduler plugin sees every task change state. Armed
(by the run's stage hook, when the stage starts), it kills the worker that has just finished the first task of that
stage (or the first task whose name starts with a given prefix, e.g. ``_score_fold`` for the tuner's folds): that
worker holds results the stage still needs and other tasks of the stage are still queued or running, so the kill
lands in the middle of the stage, not before or after it. The worker's process id comes from
``client.run(os.getpid)``; its nanny starts a fresh worker afterwards.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

from distributed import Client
from distributed.diagnostics.plugin import SchedulerPlugin


@dataclass(frozen=True)
class Kill:
    """One SIGKILL sent: to which worker, after which task finished, when (``time.monotonic()``)."""

    worker: str
    pid: int
    after_task: str
    at: float


class WorkerKiller(SchedulerPlugin):
    """Kills one worker process per arming, right after a task of the armed stage finishes on it."""

    name = "chaos-worker-killer"

    def __init__(self, client: Client):
        self.client = client
        self.scheduler = client.cluster.scheduler
        self.kills: list[Kill] = []
        self._pids: dict[str, int] = {}
        self._prefix: str | None = None
        self._every = False
        self._armed = False
        self._lock = threading.Lock()
        self.scheduler.add_plugin(self, name=self.name)

    def arm(self, task_prefix: str | None = None, every_worker: bool = False) -> None:
        """Kill the worker of the next task to finish (whose name starts with ``task_prefix``, when given), or with
        ``every_worker`` every worker at that moment, so that the cluster loses every copy of what was scattered."""
        pids = self.client.run(os.getpid)
        with self._lock:
            self._pids, self._prefix, self._every, self._armed = pids, task_prefix, every_worker, True

    def disarm(self) -> None:
        """Kill nothing more (the armed stage ended before a task of it finished)."""
        with self._lock:
            self._armed = False

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        """Wait until ``count`` workers run, none of them a killed one (its nanny has started a fresh worker).

        Raises:
            AssertionError: fewer workers run after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        killed = {kill.worker for kill in self.kills}
        while True:
            running = [address for address, worker in dict(self.scheduler.workers).items()
                       if worker.status.name == "running" and address not in killed]
            if len(running) >= count:
                return
            assert time.monotonic() < deadline, f"only {len(running)} of {count} workers run after {timeout} s"
            time.sleep(0.1)

    def transition(self, key, start, finish, *args, stimulus_id=None, **kwargs) -> None:
        if start != "processing" or finish != "memory":
            return
        with self._lock:
            if not self._armed or (self._prefix and not _task_name(key).startswith(self._prefix)):
                return
            task = self.scheduler.tasks.get(key)
            holders = [ws.address for ws in task.who_has] if task is not None and task.who_has else []
            worker = next((address for address in holders if address in self._pids), None)
            if worker is None:
                return
            self._armed = False
            victims = list(self._pids) if self._every else [worker]
        for victim in victims:
            os.kill(self._pids[victim], signal.SIGKILL)
            self.kills.append(Kill(victim, self._pids[victim], str(key), time.monotonic()))


def _task_name(key) -> str:
    """A task's key as a name: ``_score_fold-<token>`` for a submitted function, the name part of a tuple key."""
    return key if isinstance(key, str) else str(key[0])
