"""The alerts inbox page in Debian's Chromium: an operator acknowledges and resolves in place (htmx, no reload),
a viewer sees no button and a forged POST from a viewer's session is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from cloud.alerts.inbox import AlertInbox
from cloud.api.roles import Role
from cloud.pipeline.runs import RunStore
from cloud.storage import open_database
from cloud.web.auth import CSRF_FIELD
from tests.api.conftest import ServedCloud, served_cloud
from tests.web.conftest import SCREENSHOTS, BrowserLog, csrf_of, offline_page, serious_accessibility_violations, sign_in


@pytest.fixture
def cloud(config) -> Iterator[tuple[ServedCloud, int]]:
    db = open_database(config.database_path)
    try:
        runs = RunStore(db)
        run = runs.create("component_failure", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), "t")
        runs.claim(run.run_id)
        runs.fail(run.run_id, "no feature rows between 2026-01-01 and 2026-02-01")
        [alert_id] = AlertInbox(db).scan().raised
    finally:
        db.conn.close()
    with served_cloud(config) as served:
        yield served, alert_id


def test_an_operator_acknowledges_and_resolves_without_reloading(cloud, browser) -> None:
    served, alert_id = cloud
    log = BrowserLog()
    page = offline_page(browser, served.base_url, log)
    page.goto(f"{served.base_url}/login?next=/alerts")
    page.fill("#api_key", served.tokens[Role.OPERATOR])
    page.click("button[type=submit]")
    page.wait_for_url(f"{served.base_url}/alerts")
    row = page.locator(f"#alert-{alert_id}")
    assert "no feature rows" in row.inner_text()
    assert serious_accessibility_violations(page) == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "alerts.png"), full_page=True)
    page.evaluate("window.__same_page = true")  # gone if the page reloads

    row.locator("button:has-text('Acknowledge')").click()
    page.wait_for_function(f"document.querySelector('#alert-{alert_id}').innerText.includes('ack. by')")
    page.locator(f"#alert-{alert_id} button:has-text('Resolve')").click()
    page.wait_for_function(f"document.querySelector('#alert-{alert_id}').innerText.includes('resolved by')")

    assert page.evaluate("window.__same_page") is True
    assert log.console_errors == [] and log.failed == [] and log.refused == []
    alert = served.http.get("/api/alerts?state=resolved", headers=_auth(served, Role.VIEWER)).json()[0]
    assert alert["id"] == alert_id and alert["acknowledged_by"].startswith("key:")


def test_a_viewer_sees_no_button_and_cannot_post(cloud, browser) -> None:
    served, alert_id = cloud
    with sign_in(served.base_url, served.tokens[Role.VIEWER]) as viewer:
        page = viewer.get("/alerts")
        assert page.status_code == 200 and "no feature rows" in page.text and "Acknowledge" not in page.text
        token = csrf_of(viewer)
        forged = viewer.post(f"/alerts/{alert_id}/acknowledge", headers={"X-CSRF-Token": token})
        assert forged.status_code == 403
        assert viewer.post(f"/alerts/{alert_id}/resolve", data={CSRF_FIELD: token}).status_code == 403
    assert served.http.get("/api/alerts/counts", headers=_auth(served, Role.VIEWER)).json()["open"] == 1


def _auth(served: ServedCloud, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {served.tokens[role]}"}
