"""A small shop dataset in three formats and a pipeline over it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import write

PIPELINE = """
name: shop
sources:
  events:
    location: events.csv
    validation:
      max_bad_fraction: {max_bad}
      columns:
        ts: {{type: datetime, not_null: true}}
        amount: {{type: float, min: 0}}
        channel: {{type: string, allowed: [web, shop]}}
  customers:
    location: customers.jsonl
blend:
  base: events
  joins:
    - source: customers
      keys: [customer]
features:
  - derive: {{big: "amount > 100"}}
split:
  by: time
  column: ts
  boundaries: {{train: "2024-09-01", validation: "2024-10-01", test: "2024-11-01"}}
  key: [{key}]
"""


def make_shop(folder, bad_rows=3, rows=2000):
    rng = np.random.default_rng(7)
    events = pd.DataFrame(
        {
            "event_id": np.arange(rows),
            "customer": rng.integers(0, 50, rows),
            "ts": pd.date_range("2024-01-01", "2024-12-31", periods=rows).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "amount": rng.gamma(2.0, 50.0, rows).round(2).astype(str),
            "channel": rng.choice(["web", "shop"], rows),
        }
    )
    events.loc[: bad_rows - 1, "amount"] = "oops"
    events.to_csv(folder / "events.csv", index=False)
    with open(folder / "customers.jsonl", "w") as out:
        for customer in range(50):
            out.write(json.dumps({"customer": customer, "segment": "gold" if customer % 5 == 0 else "std"}) + "\n")


@pytest.fixture
def shop(tmp_path):
    """Returns a function writing the shop pipeline with options; data has 3 bad rows out of 2000."""

    def build(max_bad=0.05, key="event_id", bad_rows=3):
        make_shop(tmp_path, bad_rows=bad_rows)
        return write(tmp_path / "pipeline.yaml", PIPELINE.format(max_bad=max_bad, key=key))

    return build
