"""The performance report: periods, its JSON, and an HTML file that fetches nothing, shows the JSON's numbers and
draws its charts with the dashboard's chart code (uPlot and charts.js, inlined)."""

from __future__ import annotations

import json
import math
import re
import shutil
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
import sqlite_utils

from cloud.monitoring.performance import (
    InvalidMetrics,
    ModelPerformanceMonitor,
    UnknownModelName,
    generate_performance_report,
    resolve_period,
)
from cloud.monitoring.report import render_html
from cloud.storage import iso
from tests.monitoring import fleet
from tests.monitoring.conftest import AS_OF, Fleet
from tests.monitoring.fleet import T0


class _Figures(HTMLParser):
    """Every element with ``data-key``: its key and text; and every attribute that could load something."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[tuple[str, str]] = []
        self.loading: list[tuple[str, str]] = []
        self._key: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.loading += [(tag, name) for name in ("src", "href", "xlink:href", "srcset") if name in found]
        self._key = found.get("data-key")

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.figures.append((self._key, data))
            self._key = None


def _value(report: dict, key: str):
    """The JSON value at ``key``; None where a cell lacks the figure (the page shows —)."""
    value = report
    for part in key.split("/"):
        if isinstance(value, list):
            value = value[int(part)]
        elif part in value:
            value = value[part]
        else:
            return None
    return value


@pytest.fixture
def report(failure_fleet: Fleet) -> dict:
    db = failure_fleet.db
    fleet.version(db, "usage_pattern", "4", "usage_pattern", {"holdout": {"score_name": "neg_mae", "score": -31.5}})
    pid = fleet.prediction(
        db, T0 + timedelta(hours=3), {"litres_next_24h": 120.0}, model_name="usage_pattern", model_version="4"
    )
    fleet.outcome(db, "wh-u", T0 + timedelta(hours=27), value=150.0, source="sensor", prediction_id=pid)
    for rating, pid in zip([5, 1, 2, 4], failure_fleet.prediction_ids, strict=False):
        fleet.rating(db, pid, rating)
    ModelPerformanceMonitor(db).track_prediction_metrics("component_failure", {"alert_rate": 0.125}, T0, "1")
    return generate_performance_report(db, time_period="2026-03-01..2026-03-02", now=AS_OF)


def test_periods_resolve_to_their_span_and_series_window():
    now = datetime(2026, 5, 10, 12, tzinfo=UTC)

    assert resolve_period("last_day", now) == (now - timedelta(days=1), now, "1h")
    assert resolve_period("last_week", now) == (now - timedelta(days=7), now, "1d")
    assert resolve_period("last_month", now) == (now - timedelta(days=30), now, "1d")
    assert resolve_period("2026-01-01..2026-01-01", now) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=UTC),
        "1h",
    )
    assert resolve_period("2025-01-01..2025-12-31", now)[2] == "7d"
    for bad in ("yesterday", "2026-02-30..2026-03-01", "2026-03-02..2026-03-01"):
        with pytest.raises(InvalidMetrics, match="time_period"):
            resolve_period(bad, now)


def test_the_report_holds_every_model_with_its_summary_series_baseline_and_tracked_points(report: dict):
    assert (report["start"], report["end"], report["window"]) == (iso(T0), iso(T0 + timedelta(days=2)), "1h")
    models = {model["model_name"]: model for model in report["models"]}
    assert set(models) == {"component_failure", "usage_pattern"}

    failure = models["component_failure"]
    assert {(c["model_version"], c["arm"]) for c in failure["summary"]} == {
        (v, a) for v in ("1", "2") for a in ("champion", "challenger")
    }
    assert sum(c["predictions"] for c in failure["summary"]) == 640
    assert sum(c["predictions"] for c in failure["series"]) == 640
    assert sum(c.get("ratings", {}).get("n", 0) for c in failure["summary"]) == 4
    assert [(p["metric"], p["value"]) for p in failure["tracked"]] == [("alert_rate", 0.125)]

    usage = models["usage_pattern"]
    [cell] = usage["summary"]
    assert cell["regression"]["mae"] == pytest.approx(30.0)
    assert usage["baseline"] == {"4": {"score_name": "neg_mae", "score": -31.5}}


def _charts(html: str) -> list[dict]:
    found = re.findall(r'<script type="application/json" class="time-series">(.*?)</script>', html, re.S)
    return [json.loads(text) for text in found]


def test_the_html_fetches_nothing_and_shows_the_numbers_of_the_json(report: dict):
    html = render_html(report)

    assert not re.search(r"https?://", re.sub(r"/\*!.*?\*/", "", html))  # but uPlot's licence comment
    assert not re.search(r"<script[^>]*\ssrc", html, re.I) and "@import" not in html and "url(" not in html
    assert html.count("<script>") == 1 and "new uPlot(" in html  # the chart code, inline once
    parser = _Figures()
    parser.feed(html)
    assert parser.loading == []
    assert len(parser.figures) > 100
    keys = {key for key, _ in parser.figures}
    assert "models/0/summary/0/classification/any/roc_auc" in keys
    assert "models/1/summary/0/regression/mae" in keys
    for key, text in parser.figures:
        value = _value(report, key)
        if value is None:
            assert text == "—", key
        elif isinstance(value, str):
            assert text == value, key
        elif isinstance(value, int):
            assert int(text) == value, key
        else:
            assert math.isclose(float(text), value, rel_tol=5e-4, abs_tol=1e-12), (key, text, value)
    charts = _charts(html)
    assert len(charts) >= 5  # per model: predictions, latency, ROC AUC or MAE, calibration, ratings
    [ratings] = [c for c in charts if c.get("bars")]
    assert ratings["x"] == [1, 2, 3, 4, 5] and ratings["series"][0]["values"] == [1, 1, 0, 1, 1]
    [calibration] = [c for c in charts if c.get("x_label") == "predicted probability"]
    assert calibration["series"][0]["values"] == calibration["x"]  # the diagonal
    roc_auc = next(c for c in charts if c["y"] == "ROC AUC")
    series = {s["label"]: s["values"] for s in roc_auc["series"]}
    failure = report["models"][0]
    first = min(failure["series"], key=lambda c: (c["window_start"], c["model_version"]))
    assert series[f"v{first['model_version']}"][0] == first["classification"]["any"]["roc_auc"]


def test_a_report_for_one_model_and_an_unknown_one(failure_fleet: Fleet):
    only = generate_performance_report(failure_fleet.db, "component_failure", "2026-03-01..2026-03-02", now=AS_OF)
    assert [m["model_name"] for m in only["models"]] == ["component_failure"]

    with pytest.raises(UnknownModelName):
        generate_performance_report(failure_fleet.db, "nope", "last_week")


def test_an_empty_period_renders_a_page_saying_so(db: sqlite_utils.Database):
    report = generate_performance_report(db, time_period="last_day")

    assert report["models"] == []
    html = render_html(report)
    assert "No predictions in this period." in html and "<script" not in html  # no chart, no chart code


def test_a_browser_opens_the_page_offline_and_draws_every_chart(report: dict, tmp_path):
    """Debian's Chromium, offline, every request but the file's own refused: the page loads nothing else, logs no
    error, and each chart is a canvas with something drawn on it."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "the browser test needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
    page_file, html = tmp_path / "report.html", render_html(report)
    page_file.write_text(html, encoding="utf-8")
    requested: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = browser.new_context(offline=True)
            context.route(
                "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
            )
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            errors: list[str] = []
            page.on("console", lambda message: message.type == "error" and errors.append(message.text))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(page_file.as_uri())
            drawn = page.evaluate(
                """() => [...document.querySelectorAll('figure .uplot canvas')].map(canvas => {
                       const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
                       let painted = 0;
                       for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted++;
                       return {width: canvas.width, height: canvas.height, painted};
                   })"""
            )
            roc_auc = page.locator('[data-key="models/0/summary/0/classification/any/roc_auc"]').first.inner_text()
        finally:
            browser.close()

    assert requested == [page_file.as_uri()] and errors == []
    assert len(drawn) == len(_charts(html)) >= 5
    assert all(chart["width"] > 0 and chart["height"] > 0 and chart["painted"] > 0 for chart in drawn), drawn
    roc = report["models"][0]["summary"][0]["classification"]["any"]["roc_auc"]
    assert math.isclose(float(roc_auc), roc, rel_tol=5e-4)
