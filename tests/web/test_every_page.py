"""Every page for every role, on an empty cloud: each role gets the pages its role permits (200) and a page that
says no for the others (403); in Chromium, every page a viewer and an admin can open renders with no console error,
no failed request, no request to another host and no serious or critical accessibility finding."""

from __future__ import annotations

import pytest

from cloud.api.roles import Role
from tests.api.conftest import served_cloud
from tests.web.conftest import BrowserLog, offline_page, serious_accessibility_violations, sign_in

#: each page and the least role that opens it
PAGES = {
    "/models": Role.VIEWER,
    "/alerts": Role.VIEWER,
    "/predictions": Role.VIEWER,
    "/fleet": Role.VIEWER,
    "/rollouts": Role.VIEWER,
    "/experiments": Role.VIEWER,
    "/drift": Role.VIEWER,
    "/monitoring": Role.VIEWER,
    "/training": Role.VIEWER,
    "/rollouts/new": Role.OPERATOR,
    "/dead-letters": Role.OPERATOR,
    "/audit": Role.ADMIN,
    "/admin/keys": Role.ADMIN,
}
HUMANS = (Role.VIEWER, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN)


def _opens(role: Role, least: Role) -> bool:
    return HUMANS.index(role) >= HUMANS.index(least)


def test_each_role_opens_exactly_the_pages_its_role_permits(config) -> None:
    with served_cloud(config) as cloud:
        for role in HUMANS:
            with sign_in(cloud.base_url, cloud.tokens[role]) as client:
                for path, least in PAGES.items():
                    answer = client.get(path)
                    assert answer.status_code == (200 if _opens(role, least) else 403), (role, path)
                    assert "text/html" in answer.headers["content-type"]


@pytest.mark.parametrize("role", [Role.VIEWER, Role.ADMIN])
def test_every_page_renders_clean_in_a_browser(config, browser, role: Role) -> None:
    with served_cloud(config) as cloud:
        log = BrowserLog()
        page = offline_page(browser, cloud.base_url, log)
        page.goto(f"{cloud.base_url}/login?next=/models")
        page.fill("#api_key", cloud.tokens[role])
        page.click("button[type=submit]")
        page.wait_for_url(f"{cloud.base_url}/models")
        for path, least in PAGES.items():
            if not _opens(role, least):
                continue
            page.goto(f"{cloud.base_url}{path}")
            page.wait_for_load_state("networkidle")
            assert serious_accessibility_violations(page) == [], path
        assert log.console_errors == [] and log.failed == [] and log.refused == []
