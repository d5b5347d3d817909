"""Editing a user function's module recomputes exactly the stages running the edited code, and what depends on them:
a comment or an unrelated function recomputes nothing, a helper recomputes the stage calling it, a constant the stage
reading it."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from orchestrator.pipeline.runner import run_pipeline
from orchestrator.pipeline.spec import load_pipeline

pytestmark = pytest.mark.integration

MODULE = '''
"""The shop's own steps: one cleans the events (at ingest), one adds features (after the blend)."""

MIN_AMOUNT = 0.0


def clean(frame):
    return frame[frame["amount"] >= MIN_AMOUNT]


def _is_big(amount):
    return amount > 100


def add_features(frame):
    return frame.assign(big=_is_big(frame["amount"]))  # the label of a big basket


def unrelated(frame):
    return frame
'''


@pytest.fixture
def shop_with_functions(shop, tmp_path):
    """The shop pipeline calling a cleaning function at ingest and a feature function after the blend."""
    name = f"shop_steps_{uuid.uuid4().hex[:8]}"
    module = tmp_path / f"{name}.py"
    module.write_text(MODULE)
    path = shop()
    text = path.read_text().replace("  customers:\n", f"    steps:\n      - function: {name}:clean\n  customers:\n", 1)
    path.write_text(text.replace('  - derive: {big: "amount > 100"}', f"  - function: {name}:add_features"))
    return path, module


def test_each_kind_of_edit_recomputes_only_the_stages_whose_code_it_changes(shop_with_functions, store, dask_client):
    path, module = shop_with_functions
    runs = [run_pipeline(load_pipeline(path), store, dask_client).record]
    assert {stage["status"] for stage in runs[0]["stages"].values()} == {"ran"}

    def after(old, new):
        assert old in module.read_text()
        module.write_text(module.read_text().replace(old, new))
        runs.append(run_pipeline(load_pipeline(path), store, dask_client).record)
        return {name for name, stage in runs[-1]["stages"].items() if stage["status"] == "ran"}

    assert after("  # the label of a big basket", "  # big: more than 100") == set()
    assert after('"""The shop\'s own steps', '"""Steps of the shop') == set()
    assert after("def unrelated(frame):\n    return frame", "def unrelated(frame):\n    return frame.head()") == set()
    assert after("return amount > 100", "return amount > 120") == {"features", "split"}
    assert after("MIN_AMOUNT = 0.0", "MIN_AMOUNT = 3.0") == {"ingest.events", "blend", "features", "split"}
    # What ran is the edited code, on the workers too.
    rows = pd.read_parquet(store.dataset_path(runs[-1]["stages"]["features"]["outputs"][0]["key"]) / "data")
    assert rows["amount"].min() >= 3.0 and (rows["big"] == (rows["amount"] > 120)).all()
