"""Send a served flights model the flights of its serve partition (November and December 2013), as the clients
of a later period would, until interrupted: the traffic a closed-loop watch finds drifted.

Usage: python examples/flights/replay.py --url http://127.0.0.1:8080 --token-file token [--store .dataops]
                                         [--model flights-delay:1] [--rows-per-second 100]

The rows are those the model's training run put in its serve partition (never trained on, never tested on);
each request carries a few of them, as records of the model card's inputs.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from orchestrator.artifacts.lineage import load_record
from orchestrator.artifacts.open import open_store
from orchestrator.registry.models import ModelRegistry

BATCH = 10


def serve_rows(store_location: str, model: str) -> tuple[str, pd.DataFrame]:
    """The model's name and the serve partition of the run that trained it, with the card's inputs only."""
    store = open_store(store_location)
    card = ModelRegistry(store).card(model)
    record = load_record(store, card["lineage"]["run_id"])
    split = store.dataset_path(record["stages"]["split"]["outputs"][0]["key"])
    rows = pd.read_parquet(split / "serve").sort_values("time_hour")
    return card["name"], rows[[item["name"] for item in card["inputs"]]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the server's base URL")
    parser.add_argument("--token-file", type=Path, help="the server's bearer token file")
    parser.add_argument("--store", default=".dataops", help="the store holding the registry")
    parser.add_argument("--model", default="flights-delay:1", help="the model whose serve partition is replayed")
    parser.add_argument("--rows-per-second", type=float, default=100.0)
    args = parser.parse_args()
    name, rows = serve_rows(args.store, args.model)
    headers = {"Content-Type": "application/json"}
    if args.token_file:
        headers["Authorization"] = f"Bearer {args.token_file.read_text().strip()}"
    records = json.loads(rows.to_json(orient="records"))
    sent = failed = 0
    started = time.monotonic()
    try:
        while True:
            for first in range(0, len(records), BATCH):
                body = json.dumps({"records": records[first:first + BATCH]}).encode()
                request = urllib.request.Request(f"{args.url.rstrip('/')}/v2/models/{name}/predict", body, headers)
                try:
                    urllib.request.urlopen(request, timeout=30).read()
                except (urllib.error.URLError, OSError):
                    failed += 1
                sent += 1
                # Keep to the rate asked for: sleep until this many rows are due.
                time.sleep(max(0.0, started + sent * BATCH / args.rows_per_second - time.monotonic()))
    except KeyboardInterrupt:
        print(f"{sent} requests ({sent * BATCH} rows), {failed} failed")


if __name__ == "__main__":
    main()
