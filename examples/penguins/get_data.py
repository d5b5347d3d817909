"""Copy the Palmer penguins' raw records (344 birds, 2007-2009), as the `palmerpenguins` package ships them, into
data/: one CSV whose column names hold spaces and parentheses (`Culmen Length (mm)`) and whose missing values are
written `NA`.

Usage: python examples/penguins/get_data.py [DEST]   (default: examples/penguins/data)
"""

from __future__ import annotations

import shutil
import sys
from importlib.resources import files
from pathlib import Path


def main(dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(files("palmerpenguins") / "data" / "penguins-raw.csv", dest / "penguins-raw.csv")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data")
