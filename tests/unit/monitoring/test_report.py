"""The drift report: offline, aggregates only, small enough for 100 features and a month of daily checks."""

from __future__ import annotations

from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from orchestrator.monitoring.check import check_drift
from orchestrator.monitoring.counts import count_window
from orchestrator.monitoring.profile import build_profile
from orchestrator.monitoring.report import coarse_histogram, render_report

NUMERIC = [f"n{i:02d}" for i in range(80)]
CATEGORICAL = [f"c{i:02d}" for i in range(20)]
# Values only the current window holds: none may be written into the page.
RAW_NUMBER = 987654.321
RAW_CATEGORY = "secret-category-1f3a"


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {name: rng.normal(10 + shift, 2, rows) for name in NUMERIC}
    data.update({name: rng.choice(["red", "green", "blue", "grey"], rows) for name in CATEGORICAL})
    return pd.DataFrame(data)


@pytest.fixture(scope="module")
def month_of_checks():
    reference = frame(5000, 0)
    profile = build_profile(reference, NUMERIC, CATEGORICAL, importance={n: 1.0 for n in NUMERIC[:3]})
    # Six distinct windows, drifting more and more, repeated over a month of daily checks.
    windows = []
    for step in range(6):
        current = frame(2000, step + 1, shift=step / 5)
        current.loc[:4, "n00"] = RAW_NUMBER
        current.loc[:4, "c00"] = RAW_CATEGORY
        counts = count_window(profile, current)
        windows.append((counts, check_drift(profile, counts)))
    checks = []
    for day in range(30):
        counts, result = windows[day % 6]
        checks.append({"format": "dataops.drift-check/1", "check_id": f"check-{day:02d}",
                       "checked_at": f"2026-05-{day + 1:02d}T00:00:00.000000Z", "verdict": result.verdict,
                       "window": {"kind": "time", "since": f"2026-05-{day + 1:02d}T00:00:00Z",
                                  "until": f"2026-05-{day + 1:02d}T23:59:59Z", "rows": counts.rows},
                       "lineage": {"model": {"name": "wide", "version": 3, "sha256": "0" * 64}},
                       "result": result.to_dict()})
    return profile, checks, counts


class _Balance(HTMLParser):
    """Every opened element is closed, in order (void elements aside)."""

    VOID = frozenset({"meta", "br", "path", "rect", "line", "circle", "polyline"})

    def __init__(self):
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            assert self.open.pop() == tag


def test_a_100_feature_report_over_30_checks_is_under_2_mb_and_names_no_address(month_of_checks):
    profile, checks, counts = month_of_checks

    page = render_report(profile, checks, counts)

    assert len(page.encode()) < 2 * 1024 * 1024
    assert "http://" not in page and "https://" not in page and "<script" not in page and "@import" not in page
    parser = _Balance()
    parser.feed(page)
    assert parser.open == []


def test_the_report_holds_no_raw_value_of_the_window(month_of_checks):
    profile, checks, counts = month_of_checks

    page = render_report(profile, checks, counts)

    assert RAW_CATEGORY not in page
    assert str(RAW_NUMBER) not in page and "987654" not in page and "9.877e+05" not in page


def test_the_report_shows_the_summary_histograms_and_each_statistic_over_time(month_of_checks):
    profile, checks, counts = month_of_checks

    page = render_report(profile, checks, counts)

    latest = checks[-1]["result"]
    assert f"<b class=\"{latest['verdict']}\">{latest['verdict'].replace('_', ' ')}</b>" in page
    for reason in latest["reasons"]:
        assert reason.replace("'", "&#x27;") in page
    assert "2026-05-30T00:00:00Z to 2026-05-30T23:59:59Z" in page
    # One histogram per column, and one trend per gated statistic (numeric: 3, categorical: 4).
    assert page.count("<svg") == 100 + 80 * 3 + 20 * 4
    assert "each statistic over the last 30 checks" in page


def test_a_numeric_histogram_is_the_grid_coarsened_with_its_tails_and_sums_to_one(month_of_checks):
    profile, _, counts = month_of_checks
    column = profile.column("n00")

    shares = coarse_histogram(column, counts.columns["n00"], bins=40)

    assert len(shares) == 42 and shares.sum() == pytest.approx(1.0)
    # The five raw values far above the reference land in the upper tail bar, not in the grid.
    assert shares[-1] >= 5 / 2000
