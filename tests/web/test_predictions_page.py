"""Predictions pages: a heater's predictions paged newest first; on one, a technician records an outcome (a double
submit stores one) and a rating; notes are shown to operators only; a viewer gets no form and a forged POST 403."""

from __future__ import annotations

import re

from cloud.api.roles import Role
from cloud.storage import open_database
from cloud.web.auth import CSRF_FIELD
from tests.api import seed
from tests.api.conftest import served_cloud
from tests.web.conftest import SCREENSHOTS, BrowserLog, csrf_of, offline_page, serious_accessibility_violations, sign_in


def _seeded(config, count: int = 1) -> list[str]:
    db = open_database(config.database_path)
    try:
        seed.device(db, "wh-1")
        return [seed.prediction(db, "wh-1", minutes=n).prediction_id for n in range(count)]
    finally:
        db.close()


def test_a_heaters_predictions_page_back_without_gaps(config) -> None:
    ids = _seeded(config, 120)
    with served_cloud(config) as cloud, sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        seen, url = [], "/predictions?device=wh-1"
        while url:
            page = viewer.get(url).text
            seen += re.findall(r'href="/predictions/([0-9a-f]{32})"', page)
            older = re.search(r'href="(/predictions\?device=[^"]+before_id=[^"]+)"', page)
            url = older.group(1).replace("&amp;", "&") if older else None
        assert seen == list(reversed(ids))  # newest first, each once


def test_a_technician_records_one_outcome_however_often_the_form_is_sent(config) -> None:
    [pid] = _seeded(config)
    with served_cloud(config) as cloud:
        with sign_in(cloud.base_url, cloud.tokens[Role.TECHNICIAN]) as technician:
            page = technician.get(f"/predictions/{pid}").text
            outcome_id = re.search(r'name="outcome_id" value="([^"]+)"', page).group(1)
            form = {
                "component": "heating_element",
                "result": "failed",
                "technician": "Ana",
                "notes": "element open circuit",
                "outcome_id": outcome_id,
                CSRF_FIELD: csrf_of(technician),
            }
            for _ in range(2):
                assert technician.post(f"/predictions/{pid}/outcome", data=form).status_code == 303
            rated = technician.post(f"/predictions/{pid}/feedback", data={"rating": "4", CSRF_FIELD: form[CSRF_FIELD]})
            assert rated.status_code == 303
            page = technician.get(f"/predictions/{pid}").text
            assert page.count("heating_element</td>") == 1 and "4/5" in page
            assert "element open circuit" not in page and "operators only" in page
        with sign_in(cloud.base_url, cloud.tokens[Role.OPERATOR]) as operator:
            assert "element open circuit" in operator.get(f"/predictions/{pid}").text
        with sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
            assert "Record outcome" not in viewer.get(f"/predictions/{pid}").text
            forged = viewer.post(f"/predictions/{pid}/feedback", data={"rating": "1", CSRF_FIELD: csrf_of(viewer)})
            assert forged.status_code == 403
        bad = cloud.http.get(f"/api/predictions/{pid}/feedback", headers={"X-API-Key": cloud.tokens[Role.VIEWER]})
        assert len(bad.json()["feedback"]) == 1


def test_the_prediction_page_in_a_browser(config, browser) -> None:
    [pid] = _seeded(config)
    with served_cloud(config) as cloud:
        log = BrowserLog()
        page = offline_page(browser, cloud.base_url, log)
        page.goto(f"{cloud.base_url}/login?next=/predictions/{pid}")
        page.fill("#api_key", cloud.tokens[Role.TECHNICIAN])
        page.click("button[type=submit]")
        page.wait_for_url(f"{cloud.base_url}/predictions/{pid}")
        page.select_option("#component", "tank_leak")
        page.select_option("#result", "failed")
        page.click("button:has-text('Record outcome')")
        page.wait_for_url(f"{cloud.base_url}/predictions/{pid}")
        assert "tank_leak" in page.inner_text("main")
        assert serious_accessibility_violations(page) == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "prediction.png"), full_page=True)
        page.goto(f"{cloud.base_url}/predictions?device=wh-1")
        assert serious_accessibility_violations(page) == []
        assert log.console_errors == [] and log.failed == [] and log.refused == []
