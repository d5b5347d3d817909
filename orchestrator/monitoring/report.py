"""The drift report: one self-contained HTML page from a model's stored checks and its reference profile.

It opens offline (inline CSS and SVG drawn here, no script, no font, no link), holds aggregates only (the
reference's and the window's counts, the checks' statistics: never a row), and stays small: a numeric column's
histogram is its fine grid coarsened to ``HISTOGRAM_BINS`` bars, drawn as two paths.
"""

from __future__ import annotations

import html

import numpy as np

from orchestrator.monitoring.counts import WindowCounts
from orchestrator.monitoring.profile import (
    CategoricalReference,
    NumericReference,
    ReferenceProfile,
)

HISTOGRAM_BINS = 40
# Categories drawn one by one; the rest of the reference's top categories are summed into "other".
SHOWN_CATEGORIES = 15
WIDTH, HEIGHT = 360, 120
TREND_WIDTH, TREND_HEIGHT = 200, 48
_SEVERITY = {"drift": 0, "warning": 1, "insufficient_data": 2, "no_drift": 3}
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}h3{font-size:1em;margin:0}
.tiles{display:flex;gap:1em;flex-wrap:wrap}.tile{border:1px solid #ccc;border-radius:6px;padding:.6em 1em}
.tile b{display:block;font-size:1.3em}
.drift{color:#b00020}.warning{color:#a06000}.no_drift{color:#1b7a2f}.insufficient_data{color:#666}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left}
tr.drift td{background:#fde8ea}.column{border-top:1px solid #ddd;padding:.8em 0;display:flex;gap:2em;flex-wrap:wrap}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}
svg text{font-size:10px;fill:#444}
"""
_REFERENCE, _CURRENT = "#7aa6d6", "#e0701f"


def render_report(profile: ReferenceProfile, checks: list[dict], counts: WindowCounts | None = None) -> str:
    """The HTML report of a model version.

    Args:
        profile: The model's reference profile.
        checks: Stored check records (``dataops.drift-check/1``), oldest first; the last one is summarized.
        counts: The last check's window counts, for the reference-vs-current histograms (None: reference only).

    Returns:
        The page, one string.
    """
    if not checks:
        raise ValueError("a drift report needs at least one check")
    latest = checks[-1]
    result = latest["result"]
    model = latest["lineage"]["model"]
    title = f"Drift of {model['name']}:{model['version']}"
    results = sorted(result["columns"], key=lambda c: (_SEVERITY.get(c["verdict"], 9), c["name"]))
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>", _summary(latest),
        "<h2>Columns</h2>", _table(results),
        (f"<h2>Reference and current window, and each statistic over the last {len(checks)} "
         f"check{'s' if len(checks) != 1 else ''}</h2>"),
        (f"<p class=\"legend\"><span style=\"background:{_REFERENCE}\"></span>reference"
         f"<span style=\"background:{_CURRENT}\"></span>current window</p>"),
    ]
    by_name = {c.name: c for c in profile.columns}
    for column in results:
        reference = by_name.get(column["name"])
        current = counts.columns.get(column["name"]) if counts is not None else None
        parts.append(_column_section(column, reference, current, checks))
    parts.append("</body></html>")
    return "".join(parts)


def _summary(record: dict) -> str:
    result, window = record["result"], record["window"]
    if window.get("kind") == "data":
        span = f"dataset {window.get('location', '')}"
    elif window.get("kind") == "last_rows":
        span = f"newest {window.get('last_rows')} captured rows, {window.get('since', '-')} to {window.get('until', '-')}"
    else:
        span = f"{window.get('since')} to {window.get('until')}"
    drifted = sum(1 for c in result["columns"] if c["verdict"] == "drift")
    tiles = [("verdict", result["verdict"].replace("_", " "), result["verdict"]), ("rows", f"{result['rows']:,}", ""),
             ("drifted columns", f"{drifted} of {len(result['columns'])}", ""), ("checked at", record["checked_at"], "")]
    html_tiles = "".join(f"<div class=\"tile\">{_e(label)}<b class=\"{_e(css)}\">{_e(value)}</b></div>"
                         for label, value, css in tiles)
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in result.get("reasons", [])) or "<li>none</li>"
    return (f"<div class=\"tiles\">{html_tiles}</div><p>Window: {_e(span)}. Check {_e(record['check_id'])}.</p>"
            f"<p>Reasons:</p><ul>{reasons}</ul>")


def _table(columns: list[dict]) -> str:
    rows = []
    for column in columns:
        gated = [s for s in column["statistics"] if s.get("threshold") is not None]
        figures = ", ".join(f"{s['name']} {_number(s['value'])}" for s in gated)
        rows.append(f"<tr class=\"{_e(column['verdict'])}\"><td>{_e(column['name'])}</td><td>{_e(column['role'])}</td>"
                    f"<td>{_e(column['kind'])}</td><td class=\"{_e(column['verdict'])}\">"
                    f"{_e(column['verdict'].replace('_', ' '))}</td><td>{_e(figures)}</td></tr>")
    return ("<table><tr><th>column</th><th>role</th><th>kind</th><th>verdict</th><th>statistics</th></tr>"
            + "".join(rows) + "</table>")


def _column_section(column: dict, reference, current, checks: list[dict]) -> str:
    if isinstance(reference, NumericReference):
        chart = _numeric_histogram(reference, current)
    elif isinstance(reference, CategoricalReference):
        chart = _category_shares(reference, current)
    else:
        chart = "<p>not in the reference profile</p>"
    trends = "".join(_trend(column["name"], statistic, checks) for statistic in column["statistics"]
                     if statistic.get("threshold") is not None)
    return (f"<div class=\"column\"><div><h3 class=\"{_e(column['verdict'])}\">{_e(column['name'])} "
            f"({_e(column['verdict'].replace('_', ' '))})</h3>{chart}</div><div>{trends}</div></div>")


def coarse_histogram(reference: NumericReference, counts, bins: int = HISTOGRAM_BINS) -> np.ndarray:
    """A numeric column's shares on ``bins`` equal bars over the fine grid, then below it and above it."""
    grid = np.asarray(counts.grid, dtype=np.float64)
    if grid.size != reference.grid_bins:
        grid = np.zeros(reference.grid_bins)
    starts = np.linspace(0, reference.grid_bins, bins + 1).astype(int)[:-1]
    bars = np.add.reduceat(grid, starts) if grid.size else np.zeros(bins)
    values = np.concatenate([[sum(counts.under)], bars, [sum(counts.over)]])
    total = values.sum()
    return values / total if total else values


def _numeric_histogram(reference: NumericReference, current) -> str:
    series = [(coarse_histogram(reference, reference.counts), _REFERENCE, True)]
    if current is not None:
        series.append((coarse_histogram(reference, current), _CURRENT, False))
    top = max(float(s.max()) for s, _, _ in series) or 1.0
    bars = len(series[0][0])
    step = (WIDTH - 20) / bars
    paths = []
    for shares, colour, filled in series:
        points = [f"10,{HEIGHT - 15}"]
        for i, share in enumerate(shares):
            y = HEIGHT - 15 - share / top * (HEIGHT - 25)
            points += [f"{10 + i * step:.1f},{y:.1f}", f"{10 + (i + 1) * step:.1f},{y:.1f}"]
        points.append(f"{10 + bars * step:.1f},{HEIGHT - 15}")
        style = f"fill=\"{colour}\" fill-opacity=\"0.5\" stroke=\"none\"" if filled else \
            f"fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\""
        paths.append(f"<path d=\"M{' L'.join(points)}\" {style}/>")
    labels = (f"<text x=\"2\" y=\"{HEIGHT - 2}\">below</text>"
              f"<text x=\"{10 + step}\" y=\"{HEIGHT - 2}\">{_number(reference.grid_low)}</text>"
              f"<text x=\"{WIDTH - 10 - step}\" y=\"{HEIGHT - 2}\" text-anchor=\"end\">"
              f"{_number(reference.grid_high)}</text>"
              f"<text x=\"{WIDTH - 2}\" y=\"{HEIGHT - 2}\" text-anchor=\"end\">above</text>")
    return _svg(WIDTH, HEIGHT, "".join(paths) + labels)


def category_shares(reference: CategoricalReference, counts) -> list[tuple[str, float]]:
    """(bucket, share) for the first reference categories, the rest summed as "other", then "unseen"."""
    buckets = np.asarray(counts.buckets, dtype=np.float64)
    if buckets.size != len(reference.categories) + 2:
        buckets = np.zeros(len(reference.categories) + 2)
    total = buckets.sum() or 1.0
    shown = reference.categories[:SHOWN_CATEGORIES]
    rows = [(name, buckets[i] / total) for i, name in enumerate(shown)]
    rows.append(("other", buckets[len(shown):-1].sum() / total))
    rows.append(("unseen", buckets[-1] / total))
    return rows


def _category_shares(reference: CategoricalReference, current) -> str:
    ref = category_shares(reference, reference.counts)
    cur = category_shares(reference, current) if current is not None else None
    row_height = 14
    height = row_height * len(ref) + 6
    top = max([share for _, share in ref] + [share for _, share in (cur or [])]) or 1.0
    scale = (WIDTH - 110) / top
    shapes = []
    for i, (name, share) in enumerate(ref):
        y = 3 + i * row_height
        shapes.append(f"<text x=\"0\" y=\"{y + 10}\">{_e(name[:14])}</text>"
                      f"<rect x=\"90\" y=\"{y}\" width=\"{share * scale:.1f}\" height=\"6\" fill=\"{_REFERENCE}\"/>")
        if cur is not None:
            shapes.append(f"<rect x=\"90\" y=\"{y + 6}\" width=\"{cur[i][1] * scale:.1f}\" height=\"6\" "
                          f"fill=\"{_CURRENT}\"/>")
        shapes.append(f"<text x=\"{WIDTH}\" y=\"{y + 10}\" text-anchor=\"end\">{share:.0%}"
                      + (f" / {cur[i][1]:.0%}" if cur is not None else "") + "</text>")
    return _svg(WIDTH, height, "".join(shapes))


def _trend(column: str, statistic: dict, checks: list[dict]) -> str:
    """A statistic's values across the checks, with its threshold as a dashed line."""
    values = []
    for record in checks:
        found = next((c for c in record["result"]["columns"] if c["name"] == column), None)
        stat = next((s for s in found["statistics"] if s["name"] == statistic["name"]), None) if found else None
        values.append(stat["value"] if stat and stat.get("value") is not None else None)
    threshold = statistic["threshold"]
    known = [v for v in values if v is not None]
    top = max(known + [threshold]) * 1.1 or 1.0
    n = len(values)

    def x(i: int) -> float:
        return 4 + (i / (n - 1) if n > 1 else 0.5) * (TREND_WIDTH - 8)

    def y(v: float) -> float:
        return TREND_HEIGHT - 4 - v / top * (TREND_HEIGHT - 14)

    points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values) if v is not None)
    last = next(((i, v) for i, v in reversed(list(enumerate(values))) if v is not None), None)
    dot = (f"<circle cx=\"{x(last[0]):.1f}\" cy=\"{y(last[1]):.1f}\" r=\"2.5\" fill=\"{_CURRENT}\"/>"
           if last else "")
    body = (f"<text x=\"4\" y=\"9\">{_e(statistic['name'])} {_number(last[1] if last else None)} "
            f"(threshold {_number(threshold)})</text>"
            f"<line x1=\"4\" x2=\"{TREND_WIDTH - 4}\" y1=\"{y(threshold):.1f}\" y2=\"{y(threshold):.1f}\" "
            "stroke=\"#b00020\" stroke-dasharray=\"3,3\"/>"
            f"<polyline points=\"{points}\" fill=\"none\" stroke=\"#444\"/>{dot}")
    return _svg(TREND_WIDTH, TREND_HEIGHT, body)


def _svg(width: int, height: int, body: str) -> str:
    # Inline SVG in HTML needs no namespace declaration: the page names no address at all.
    return f"<svg width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">{body}</svg>"


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def _e(text) -> str:
    return html.escape(str(text), quote=True)
