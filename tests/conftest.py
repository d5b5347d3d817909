"""Shared fixtures: one real Dask cluster for the whole session, and tiny pipelines written into tmp folders."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest


def pytest_configure(config):
    """Remember the secrets the session mints (credentials, tokens, TempURL keys) for the scan at its end."""
    from tests.support.secret_scan import collect_minted_secrets

    collect_minted_secrets()


def pytest_sessionfinish(session, exitstatus):
    """Scan what the session wrote for the secrets it used (a hit fails the session), then write the chaos suite's
    table (docs/chaos.md) from the cases this session ran."""
    from tests.support.chaos_table import write_table
    from tests.support.secret_scan import check_session

    check_session(session)
    # Only a session that ran chaos cases rewrites the table: a unit run's scan row alone is no news for docs/.
    if any(item.get_closest_marker("chaos") for item in session.items):
        write_table()


@pytest.fixture(scope="session")
def dask_client():
    """A real distributed cluster (scheduler + one worker process) on loopback."""
    from orchestrator.dask_client import dask_client as open_client

    with open_client() as client:
        yield client


@pytest.fixture
def store(tmp_path):
    from orchestrator.artifacts.local import LocalStore

    return LocalStore(tmp_path / "store")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path
