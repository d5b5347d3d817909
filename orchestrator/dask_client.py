"""The one way this package opens a Dask client, for every command that computes (run, predict, and later drift
checks and scheduled runs).

A remote scheduler (``tcp://`` or ``tls://``; TLS from the ``security`` given, else from Dask's own configuration,
``distributed.comm.tls.*``) and its workers are sent this machine's ``orchestrator`` package first: tasks name its
functions, and the cluster must run the client's version. Without a scheduler, a LocalCluster bound to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import dask
from distributed import Client, LocalCluster

import orchestrator

CONNECT_TIMEOUT = "30s"
# A LocalCluster closes the nanny of a worker still missing ``lost-worker-timeout`` (15 s) after one of its deaths,
# even while that nanny is restarting it: a worker dying twice about 15 s apart was gone for good, and a run whose
# only worker it was waited forever. Every worker here is a nanny's child on this machine: let the nanny restart it.
KEEP_RESTARTING_WORKERS = {"distributed.deploy.lost-worker-timeout": "3650d"}


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
    with dask.config.set(KEEP_RESTARTING_WORKERS), LocalCluster(
        n_workers=workers or 1,
        threads_per_worker=max(1, threads // (workers or 1)),
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        silence_logs=40,
    ) as cluster, Client(cluster) as client:
        yield client


def _package_files() -> list[tuple[str, bytes]]:
    """The package's modules, as (path in the archive, content), sorted.

    Read from the folder the package was imported from; or, when it was imported from a shipped archive (a
    scheduler running in this process, as a LocalCluster's does, received one and put it first on the path), from
    that archive: shipping again must ship the same code, never an empty archive.
    """
    package = Path(orchestrator.__file__).parent
    if package.is_dir():
        return [(path.relative_to(package.parent).as_posix(), path.read_bytes())
                for path in sorted(package.rglob("*.py"))]
    archive = next(parent for parent in package.parents if parent.is_file())
    with zipfile.ZipFile(archive) as shipped:
        return [(name, shipped.read(name)) for name in sorted(shipped.namelist())
                if name.startswith("orchestrator/") and name.endswith(".py")]


def ship_code(client: Client) -> None:
    """Upload the ``orchestrator`` package, zipped, to the scheduler and every worker, present and future.

    The archive is named by its content and its bytes depend on nothing else (sorted entries, fixed times): a
    worker that imported modules from it keeps reading them from an identical file when the same code is shipped
    again (zipimport caches each archive's directory by path: a different file under the same name makes the
    modules not yet imported unfindable, and the worker stops), and new code comes as a new archive.
    """
    files = _package_files()
    digest = hashlib.sha256(b"".join(name.encode() + b"\0" + data for name, data in files)).hexdigest()[:16]
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / f"dataops-{orchestrator.__version__}-{digest}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for name, data in files:
                bundle.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data,
                                compress_type=zipfile.ZIP_DEFLATED)
        # load=True puts the zip on sys.path there (and imports the package once, which is cheap).
        client.upload_file(str(archive), load=True)
