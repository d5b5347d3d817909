"""The flights example laid out once per test session, with a lighter model so the tests stay quick."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import pytest
import yaml

EXAMPLE = Path(__file__).parents[3] / "examples" / "flights"


@pytest.fixture(scope="session")
def flights_data(tmp_path_factory) -> Path:
    """The example's data files, downloaded and laid out once."""
    folder = tmp_path_factory.mktemp("flights-data")
    runpy.run_path(str(EXAMPLE / "get_data.py"), run_name="not_main")["main"](folder)
    return folder


@pytest.fixture()
def flights_dir(tmp_path, flights_data) -> Path:
    """A copy of the example folder (its data linked in) whose model trains in seconds."""
    folder = tmp_path / "flights"
    folder.mkdir()
    shutil.copy(EXAMPLE / "features.py", folder)
    (folder / "data").symlink_to(flights_data)
    spec = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    spec["model"]["params"] = {"max_iter": 30, "early_stopping": False}
    spec["model"]["tuning"]["space"] = {"learning_rate": [0.1, 0.2]}
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder
