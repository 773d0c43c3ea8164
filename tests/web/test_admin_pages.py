"""Audit log, API keys and dead letters pages over real HTTP, and the audit page in Chromium: an admin creates a
key (shown once, and it works), revokes it, filters the log and verifies the chain from the page."""

from __future__ import annotations

import re

import httpx

from cloud.api.roles import Role
from cloud.web.auth import CSRF_FIELD
from tests.api.conftest import served_cloud
from tests.web.conftest import SCREENSHOTS, BrowserLog, csrf_of, offline_page, serious_accessibility_violations, sign_in


def test_an_admin_creates_a_key_shown_once_that_works_then_revokes_it(config) -> None:
    with served_cloud(config) as cloud, sign_in(cloud.base_url, cloud.tokens[Role.ADMIN]) as admin:
        token = csrf_of(admin)
        made = admin.post("/admin/keys", data={"name": "night shift", "role": "operator", CSRF_FIELD: token})
        assert made.status_code == 201
        new_token = re.search(r'<code id="new-token">([^<]+)</code>', made.text).group(1)
        key_id = new_token.split("_")[1]
        assert admin.get("/admin/keys").text.count(new_token) == 0  # shown once
        with sign_in(cloud.base_url, new_token) as night_shift:
            assert night_shift.get("/alerts").status_code == 200

        revoked = admin.post(f"/admin/keys/{key_id}/revoke", data={CSRF_FIELD: token})
        assert revoked.status_code == 303
        refused = httpx.post(f"{cloud.base_url}/login", data={"api_key": new_token, "next": "/"})
        assert refused.status_code == 401 and "revoked" in refused.text

        duplicate = admin.post(
            "/admin/keys", data={"name": "x", "role": "viewer", "gateway_id": "gw-1", CSRF_FIELD: token}
        )
        assert duplicate.status_code == 400 and "only gateway keys belong to a gateway" in duplicate.text
        taken = admin.post(
            "/admin/keys", data={"name": "gw", "role": "gateway", "gateway_id": "gw-001", CSRF_FIELD: token}
        )
        assert taken.status_code == 409 and "already has a live key" in taken.text

        log = admin.get("/audit", params={"action": "admin.revoke-key"}).text
        assert key_id in log and "admin.create-key" not in log


def test_only_admins_reach_the_audit_log_and_keys_and_operators_the_dead_letters(config) -> None:
    with served_cloud(config) as cloud:
        for role, allowed in ((Role.VIEWER, set()), (Role.OPERATOR, {"/dead-letters"}), (Role.ADMIN, None)):
            with sign_in(cloud.base_url, cloud.tokens[role]) as client:
                for path in ("/audit", "/admin/keys", "/dead-letters"):
                    status = client.get(path).status_code
                    assert status == (200 if allowed is None or path in allowed else 403), (role, path, status)
                forged = client.post("/admin/keys", data={"name": "x", "role": "admin", CSRF_FIELD: csrf_of(client)})
                assert forged.status_code == (201 if role == Role.ADMIN else 403)


def test_the_chain_is_verified_from_the_page(config, browser) -> None:
    with served_cloud(config) as cloud:
        log = BrowserLog()
        page = offline_page(browser, cloud.base_url, log)
        page.goto(f"{cloud.base_url}/login?next=/audit")
        page.fill("#api_key", cloud.tokens[Role.ADMIN])
        page.click("button[type=submit]")
        page.wait_for_url(f"{cloud.base_url}/audit")
        assert "admin.create-key" in page.inner_text("table")  # the fixture's keys
        page.click("button:has-text('Verify the chain')")
        page.wait_for_selector("#verification p")
        assert "The chain holds" in page.inner_text("#verification")
        assert serious_accessibility_violations(page) == []
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "audit.png"), full_page=True)
        for path in ("/admin/keys", "/dead-letters"):
            page.goto(f"{cloud.base_url}{path}")
            assert serious_accessibility_violations(page) == [], path
        assert log.console_errors == [] and log.failed == [] and log.refused == []
