"""The one way this package opens a Dask client, for every command that computes (run, predict, and later drift
checks and scheduled runs).

A remote scheduler (``tcp://`` or ``tls://``; TLS from the ``security`` given, else from Dask's own configuration,
``distributed.comm.tls.*``) and its workers are sent this machine's ``orchestrator`` package first: tasks name its
functions, and the cluster must run the client's version. Without a scheduler, a LocalCluster bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from distributed import Client, LocalCluster

import orchestrator

CONNECT_TIMEOUT = "30s"


@contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None, security=None) -> Iterator[Client]:
    """A client on ``scheduler``, or on a LocalCluster of this machine, closed on exit.

    Args:
        scheduler: the scheduler's address; empty or None starts a LocalCluster.
        workers: worker processes of the LocalCluster (one with a thread per core measured fastest here).
        security: a ``distributed.Security`` for a ``tls://`` scheduler (a cluster's own certificate).
    """
    if scheduler:
        with Client(scheduler, timeout=CONNECT_TIMEOUT, security=security) as client:
            ship_code(client)
            yield client
        return
    threads = os.cpu_count() or 2
    with LocalCluster(
        n_workers=workers or 1,
        threads_per_worker=max(1, threads // (workers or 1)),
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=40,
    ) as cluster, Client(cluster) as client:
        yield client


def ship_code(client: Client) -> None:
    """Upload the ``orchestrator`` package, zipped, to the scheduler and every worker, present and future."""
    package = Path(orchestrator.__file__).parent
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"dataops-{orchestrator.__version__}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for path in sorted(package.rglob("*.py")):
                bundle.write(path, path.relative_to(package.parent).as_posix())
        # load=True puts the zip on sys.path there (and imports the package once, which is cheap).
        client.upload_file(str(archive), load=True)
