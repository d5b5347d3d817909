"""A small world for the closed loop: a year of labelled visits whose inputs shift and whose label changes cause
half way, a pipeline file that retrains on a split window following as_of, and captured traffic in the inference
server's own format.

Before the shift ``load`` is centred on 0 and decides whether a visit is busy; after it, ``load`` is centred on 1.5
(drift no check misses) and ``size`` decides. A model trained before the shift is no better than chance on labelled
rows after it; one trained after it is good: a challenger retrained on fresh rows beats the champion by far.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

MODEL = "visits-busy"
ROWS_PER_DAY = 40
DAYS = 360
SHIFT_DAYS_BEFORE_END = 150  # the shift happens this long before the data's last day
INPUTS = ["load", "size", "region"]
REGIONS = np.array(["north", "south", "east"])

PIPELINE = """
name: visits-busy
sources:
  visits:
    location: visits.csv
    validation:
      columns:
        ts: {{type: datetime, not_null: true}}
split:
  by: time
  column: ts
  window: {{train: 60d, validation: 14d, test: 14d}}
  key: [visit_id]
model:
  name: visits-busy
  task: classification
  target: busy
  features: {{numeric: [load, size], categorical: [region]}}
  estimator: sklearn.linear_model.LogisticRegression
score_serve: false
monitoring:
  min_rows: {min_rows}
  watch: {{every: {every}, windows: {windows}, drifted: {windows}}}
  retrain:
    cooldown: {cooldown}
    max: 3 per 30d
    approval: {approval}
    challenger: {{margin: {margin}}}
"""


def pipeline_text(*, every: str = "1d", windows: int = 3, min_rows: int = 500, cooldown: str = "7d",
                  approval: str = "auto", margin: float = 0.02) -> str:
    """The pipeline file, with the loop's policy as given."""
    return PIPELINE.format(every=every, windows=windows, min_rows=min_rows, cooldown=cooldown, approval=approval,
                           margin=margin)


def inputs(rows: int, shifted: bool, rng: np.random.Generator) -> pd.DataFrame:
    """Visits' inputs, before the shift or after it."""
    return pd.DataFrame({"load": rng.normal(1.5 if shifted else 0.0, 1.0, rows).round(4),
                         "size": rng.normal(0.0, 1.0, rows).round(4),
                         "region": REGIONS[rng.choice(3, size=rows, p=[0.5, 0.3, 0.2])]})


def make_visits(folder: Path, end: datetime, seed: int = 5) -> datetime:
    """Write ``visits.csv``: ``DAYS`` days of visits up to ``end``; return the time of the shift."""
    rng = np.random.default_rng(seed)
    rows = DAYS * ROWS_PER_DAY
    stamps = pd.date_range(end - timedelta(days=DAYS), end, periods=rows, tz="UTC")
    shift = end - timedelta(days=SHIFT_DAYS_BEFORE_END)
    after = np.asarray(stamps >= pd.Timestamp(shift))
    frame = pd.concat([inputs(int((~after).sum()), False, rng), inputs(int(after.sum()), True, rng)],
                      ignore_index=True)
    cause = np.where(after, frame["size"], frame["load"])
    frame["busy"] = rng.random(rows) < 1 / (1 + np.exp(-2.5 * cause))
    frame.insert(0, "ts", stamps.strftime("%Y-%m-%dT%H:%M:%SZ"))
    frame.insert(0, "visit_id", np.arange(rows))
    frame.to_csv(folder / "visits.csv", index=False)
    return shift


def write_pipeline(folder: Path, **policy) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(pipeline_text(**policy).lstrip())
    return path


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame[INPUTS].to_json(orient="records"))


def write_captures(store, model_folder: Path, rows: pd.DataFrame, at: datetime) -> str:
    """Captured traffic as the inference server writes it: ``rows`` scored by the model's ONNX graph, one batch
    stamped ``at`` under ``captures/<model>/<version>/<day>/``; returns the batch's key."""
    from orchestrator.serving.model import load_model_folder

    model = load_model_folder(model_folder)
    feeds = {"load": rows["load"].to_numpy(np.float32).reshape(-1, 1),
             "size": rows["size"].to_numpy(np.float32).reshape(-1, 1),
             "region": rows["region"].to_numpy(object).reshape(-1, 1)}
    outputs = model.run(feeds)
    lines = []
    for i in range(len(rows)):
        lines.append(json.dumps({
            "ts": at.isoformat(), "model": model.name, "version": model.version, "request_id": None,
            "inputs": {name: feeds[name][i, 0].item() if name != "region" else feeds[name][i, 0] for name in feeds},
            "outputs": {"label": outputs["label"][i].item(),
                        "probabilities": [float(p) for p in outputs["probabilities"][i]]}}))
    key = (f"captures/{model.name}/{model.version}/{at:%Y-%m-%d}/{at:%Y%m%dT%H%M%S%f}Z-1-"
           f"{secrets.token_hex(3)}.jsonl")
    store.put_bytes(key, ("\n".join(lines) + "\n").encode())
    return key
