"""The drift page: a feature's statistic over recorded checks (uPlot), the latest check's verdicts and data-quality
findings, and a check run by an operator through ``detect_model_drift`` and ``record_check``; viewers only look."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.monitoring.drift import detect_model_drift, drift_history, record_check
from cloud.storage import open_database
from cloud.web.auth import CSRF_FIELD
from tests.api.conftest import ServedCloud, served_cloud
from tests.drift.fleet import NOW, feature_values, register, store_features
from tests.web.conftest import SCREENSHOTS, BrowserLog, csrf_of, offline_page, serious_accessibility_violations, sign_in

MODEL = "component_failure"
SHIFTED = "ambient_temperature_c"
#: a fraction moved beyond 1: a data-quality finding as well as drift
BROKEN = "duty_cycle_upper"


@pytest.fixture
def cloud(config: CloudConfig) -> Iterator[ServedCloud]:
    """A version with its reference, two days of feature rows (the later one shifted), a recorded check of each."""
    db = open_database(config.database_path)
    try:
        register(db, feature_values(4_000, seed=1))
        store_features(db, feature_values(400, seed=2), hours_ago=60)
        store_features(db, feature_values(400, seed=3, shift={SHIFTED: 2, BROKEN: 2}), hours_ago=12)
        for days_before in (3, 1):
            window = (NOW - timedelta(days=days_before), NOW - timedelta(days=days_before - 1))
            record_check(db, detect_model_drift(db, MODEL, window=window), actor="cli:alice")
    finally:
        db.conn.close()
    with served_cloud(config) as served:
        yield served


def _chart(page: str) -> dict:
    found = re.search(r'<script type="application/json" class="time-series">(.*?)</script>', page, re.S)
    assert found, "no chart on the page"
    return json.loads(found[1])


def test_a_viewer_sees_the_statistic_over_time_verdicts_and_findings_but_cannot_check(cloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        page = viewer.get(f"/drift?model={MODEL}")
        assert page.status_code == 200
        assert "Run and record the check" not in page.text
        chart = _chart(page.text)  # the first drifted feature of the latest check is shown by default
        assert chart["y"].startswith(BROKEN) or chart["y"].startswith(SHIFTED)
        shifted = viewer.get(f"/drift?model={MODEL}&feature={SHIFTED}").text
        one = _chart(shifted)
        assert one["y"] == f"{SHIFTED} (all)" and len(one["x"]) == 2 and one["x"] == sorted(one["x"])
        [wasserstein, threshold] = [s for s in one["series"] if "wasserstein" in s["label"]]
        assert wasserstein["values"][0] < threshold["values"][0] <= wasserstein["values"][1]  # drifted on day two
        assert re.search(rf"{SHIFTED}</strong></td>.*?>drift</td>", shifted, re.S)
        assert "out of range" in shifted and BROKEN in shifted
        assert "nwp500-50" in viewer.get(f"/drift?model={MODEL}&segment=nwp500-50").text
        token = csrf_of(viewer)
        forged = viewer.post(f"/drift/{MODEL}/check", data={"days": "365", CSRF_FIELD: token})
        assert forged.status_code == 403 and "operator" in forged.text


def test_an_operator_runs_and_records_a_check(cloud) -> None:
    with sign_in(cloud.base_url, cloud.tokens[Role.OPERATOR]) as operator:
        assert operator.post(f"/drift/{MODEL}/check", data={"days": "365"}).status_code == 403  # no CSRF token
        token = csrf_of(operator)
        done = operator.post(f"/drift/{MODEL}/check", data={"days": "365", CSRF_FIELD: token}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == f"/drift?model={MODEL}&segment=all"
        unknown = operator.post(
            f"/drift/{MODEL}/check", data={"days": "365", "device_type": "kettle", CSRF_FIELD: token}
        )
        assert unknown.status_code == 400 and "unknown device type" in unknown.text
    db = open_database(cloud.config.database_path)
    try:
        newest, *older = drift_history(db, MODEL)
    finally:
        db.conn.close()
    assert len(older) == 2 and newest["checked_by"].startswith("key:") and SHIFTED in newest["drifted"]


def test_the_drift_chart_is_drawn_offline_and_accessibly(cloud, browser) -> None:
    log = BrowserLog()
    page = offline_page(browser, cloud.base_url, log, viewport={"width": 1280, "height": 900})
    page.goto(f"{cloud.base_url}/login?next=/drift")
    page.fill("#api_key", cloud.tokens[Role.OPERATOR])
    page.click("button[type=submit]")
    page.wait_for_url(f"{cloud.base_url}/drift")
    page.select_option("#drift-feature", SHIFTED)
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("#drift-chart .uplot canvas")
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "drift.png"), full_page=True)
    assert log.console_errors == [] and log.failed == [] and log.refused == []
