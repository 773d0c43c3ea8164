"""The dashboard in Debian's Chromium, kept off every host but the cloud: an operator promotes and rolls back from
the pages and the signed director documents reach the broker; every page renders clean for every role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from tests.api.conftest import ServedCloud, served_cloud
from tests.registry.test_http import retained_document
from tests.releases.conftest import (  # noqa: F401 (fixture)
    PASSPHRASE,
    clear_retained,
    onnx_models,
    released_cloud,
)
from tests.web.conftest import SCREENSHOTS, BrowserLog, offline_page, serious_accessibility_violations

pytestmark = pytest.mark.mqtt

NAME = "component_failure"
GATEWAY = "gw-web-1"


@pytest.fixture
def cloud(tmp_path: Path, onnx_models: dict[int, bytes], monkeypatch) -> Iterator[ServedCloud]:  # noqa: F811
    """Versions 1 and 2 signed into TUF and released, one gateway seen, the API and pages on a real port."""
    config: CloudConfig = released_cloud(tmp_path, onnx_models, [GATEWAY], NAME)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    with served_cloud(config) as served:
        yield served
    clear_retained(config, [GATEWAY])


def _sign_in(page, cloud: ServedCloud, role: Role) -> None:
    page.goto(f"{cloud.base_url}/models")
    assert page.url.endswith("/login?next=/models")
    page.fill("#api_key", cloud.tokens[role])
    page.click("button[type=submit]")
    page.wait_for_url(f"{cloud.base_url}/models")


def _promote(page, cloud: ServedCloud, version: str, reason: str) -> None:
    page.goto(f"{cloud.base_url}/models/{NAME}")
    page.click(f"a[href='/models/{NAME}/versions/{version}/promote']")
    assert "Evaluation gate" in page.content()
    page.fill("#reason", reason)
    page.click("button:has-text('Promote and direct gateways')")
    page.wait_for_url(f"{cloud.base_url}/models/{NAME}")


def test_an_operator_promotes_and_rolls_back_from_the_pages(cloud: ServedCloud, browser) -> None:
    log = BrowserLog()
    page = offline_page(browser, cloud.base_url, log)
    _sign_in(page, cloud, Role.OPERATOR)

    _promote(page, cloud, "1", "first model in the field")
    assert retained_document(cloud.config, GATEWAY).signed.models[NAME].version == "1"
    _promote(page, cloud, "2", "beats version 1 on the held-out month")
    assert retained_document(cloud.config, GATEWAY).signed.models[NAME].version == "2"

    page.fill("#rollback-reason", "field recall dropped")
    page.click("button:has-text('Roll back')")
    page.wait_for_url(f"{cloud.base_url}/models/{NAME}")
    assert retained_document(cloud.config, GATEWAY).signed.models[NAME].version == "1"

    history = page.locator("table").nth(1).inner_text()
    assert "field recall dropped" in history and "beats version 1" in history
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "model.png"), full_page=True)
    audited = cloud.http.get("/api/audit", params={"action": "models.rollback"}, headers=_auth(cloud, Role.ADMIN))
    assert audited.status_code == 200, audited.text
    assert audited.json()[-1]["actor"].startswith("key:")
    assert log.console_errors == [] and log.failed == [] and log.refused == []


@pytest.mark.parametrize("role", [Role.VIEWER, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN])
def test_every_page_renders_clean_and_accessible_for_every_role(cloud: ServedCloud, browser, role: Role) -> None:
    log = BrowserLog()
    page = offline_page(browser, cloud.base_url, log)
    _sign_in(page, cloud, role)
    pages = ["/models", f"/models/{NAME}", f"/models/{NAME}/compare?a=1&b=2", "/docs"]
    if role in (Role.OPERATOR, Role.ADMIN):
        pages.append(f"/models/{NAME}/versions/2/promote")
    for path in pages:
        page.goto(f"{cloud.base_url}{path}")
        page.wait_for_load_state("networkidle")
        if path != "/docs":  # Swagger UI's own markup is not ours to fix
            assert serious_accessibility_violations(page) == [], path
    controls = page.goto(f"{cloud.base_url}/models/{NAME}") and page.locator("text=Roll back").count()
    assert (controls > 0) == (role in (Role.OPERATOR, Role.ADMIN))
    if role == Role.OPERATOR:
        page.goto(f"{cloud.base_url}/models")
        page.screenshot(path=str(SCREENSHOTS / "models.png"), full_page=True)
    assert log.console_errors == [] and log.failed == [] and log.refused == []


def _auth(cloud: ServedCloud, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {cloud.tokens[role]}"}
