"""Copy Seattle's daily weather (2012-2015), as the `vega_datasets` package ships it, into data/: one CSV whose
dates are written 2012/01/01, with the day's weather as a label of five classes (drizzle, fog, rain, snow, sun).

Usage: python examples/seattle/get_data.py [DEST]   (default: examples/seattle/data)
"""

from __future__ import annotations

import shutil
import sys
from importlib.resources import files
from pathlib import Path


def main(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files("vega_datasets") / "_data" / "seattle-weather.csv", dest / "seattle-weather.csv")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data")
