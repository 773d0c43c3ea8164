"""The monitoring page: metrics over time per version × device type × arm (uPlot), calibration, the period's
figures as the API computes them, and label coverage, from predictions and outcomes stored by their owner and the
feedback service."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.storage import iso, open_database
from tests.api.conftest import ServedCloud, served_cloud
from tests.web.conftest import (
    SCREENSHOTS,
    BrowserLog,
    offline_page,
    serious_accessibility_violations,
    sign_in,
    store_labelled,
)

MODEL = "component_failure"
T0 = datetime(2026, 3, 1, tzinfo=UTC)
PERIOD = "2026-03-01..2026-03-02"
CELLS = [("1", "tank-50", "champion"), ("1", "heat-pump-80", "champion"), ("2", "tank-50", "challenger")]
PER_CELL = 24


def _store(db) -> None:
    """Predictions of each cell every two hours; half of them labelled through the feedback service (linked), the
    other half by a device outcome alone. A heating element fails 3 days later more often the higher its score."""
    rng = np.random.default_rng(7)
    made, device_outcomes, linked = [], [], []
    for version, device_type, arm in CELLS:
        for i in range(PER_CELL):
            at = T0 + timedelta(hours=2 * i)
            p = round(float(rng.uniform()), 2)
            prediction_id, device = uuid.uuid4().hex, f"wh-{uuid.uuid4().hex[:8]}"
            outputs = json.dumps({"none": round(1 - p, 2), "heating_element": p})
            made.append(
                (
                    prediction_id,
                    arm,
                    device,
                    device_type,
                    MODEL,
                    MODEL,
                    version,
                    outputs,
                    1.0 + i % 5,
                    iso(at),
                    iso(at),
                    "gw-1",
                    uuid.uuid4().hex,
                )
            )
            failed = rng.uniform() < p
            found = {"component": "heating_element", "result": "failed" if failed else "ok"}
            observed = at + timedelta(days=3 if failed else 1)
            if i % 2:
                device_outcomes.append(
                    (
                        uuid.uuid4().hex,
                        device,
                        "technician",
                        iso(observed),
                        None,
                        found["component"],
                        found["result"],
                        None,
                        None,
                        None,
                        "gw-1",
                        iso(observed),
                    )
                )
            else:
                linked.append((prediction_id, found | {"observed_at": observed}))
    store_labelled(db, made, device_outcomes, linked)


@pytest.fixture
def cloud(config: CloudConfig) -> Iterator[ServedCloud]:
    db = open_database(config.database_path)
    try:
        _store(db)
    finally:
        db.conn.close()
    with served_cloud(config) as served:
        yield served


def _charts(page: str) -> list[dict]:
    found = re.findall(r'<script type="application/json" class="time-series">(.*?)</script>', page, re.S)
    return [json.loads(text) for text in found]


def test_a_viewer_sees_metrics_per_cell_over_time_and_the_label_coverage(cloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        page = viewer.get(f"/monitoring?model={MODEL}&period={PERIOD}&window=12h&component=heating_element")
        assert page.status_code == 200
        *series, calibration = _charts(page.text)
        assert [chart["y"] for chart in series] == ["precision", "recall", "ROC AUC", "Brier score", "ms"]
        labels = {s["label"] for s in series[0]["series"]}
        assert labels == {"v1 · tank-50 · champion", "v1 · heat-pump-80 · champion", "v2 · tank-50 · challenger"}
        assert len(series[-1]["x"]) == 4 and series[-1]["x"] == sorted(series[-1]["x"])  # 12-hour windows
        assert calibration["time"] is False and calibration["series"][0]["label"] == "perfectly calibrated"

        figures = viewer.get(
            f"/api/monitoring/performance/{MODEL}",
            params={"time_period": PERIOD, "window": "all"},
            headers={"Authorization": f"Bearer {cloud.tokens[Role.VIEWER]}"},
        ).json()
        [cell] = [c for c in figures["cells"] if (c["model_version"], c["device_type"]) == ("2", "tank-50")]
        precision = cell["classification"]["heating_element"]["precision"]
        summary = page.text[page.text.index('id="summary"') : page.text.index('id="coverage"')]
        assert re.search(
            rf"<td>2</td><td>tank-50</td><td>challenger</td><td>{PER_CELL}</td>.*?{precision:.3f}", summary, re.S
        )

        coverage = page.text[page.text.index('id="coverage"') :]
        assert coverage.count(f"<td>{PER_CELL}</td><td>{PER_CELL // 2}</td>") == len(CELLS)
        assert coverage.count("50.0%") == len(CELLS) and " h</td>" in coverage  # labels arrived after hours

        nothing = viewer.get("/monitoring?model=usage_pattern")
        assert nothing.status_code == 200 and "unknown model" in nothing.text
        assert viewer.get("/monitoring?period=sometime").status_code == 400
        assert viewer.get("/monitoring?window=often").status_code == 400


def test_a_stranger_is_sent_to_sign_in(cloud) -> None:
    answer = cloud.http.get("/monitoring", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/monitoring"


def test_the_monitoring_charts_are_drawn_offline_and_accessibly(cloud, browser) -> None:
    log = BrowserLog()
    page = offline_page(browser, cloud.base_url, log, viewport={"width": 1280, "height": 900})
    page.goto(
        f"{cloud.base_url}/login?next=/monitoring%3Fperiod%3D{PERIOD}%26window%3D12h%26component%3Dheating_element"
    )
    page.fill("#api_key", cloud.tokens[Role.VIEWER])
    page.click("button[type=submit]")
    page.wait_for_selector("#calibration .uplot canvas")
    assert page.locator("figure.chart .uplot").count() == 6
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "monitoring.png"), full_page=True)
    assert log.console_errors == [] and log.failed == [] and log.refused == []
