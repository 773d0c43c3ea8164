"""The pages over real HTTP: sign-in, the cookie's flags, roles and CSRF on every change, offline API docs."""

from __future__ import annotations

import re

import httpx

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.storage import open_database
from cloud.web.app import STATIC
from cloud.web.auth import COOKIE, CSRF_FIELD
from tests.api.conftest import served_cloud
from tests.web.conftest import csrf_of, sign_in


def test_a_page_sends_a_stranger_to_sign_in_and_back(config) -> None:
    with served_cloud(config) as cloud:
        answer = cloud.http.get("/models?x=1", follow_redirects=False)
        assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/models"

        refused = cloud.http.post("/login", data={"api_key": "iots_nonsense", "next": "/models"})
        assert refused.status_code == 401 and "malformed API key" in refused.text

        signed_in = cloud.http.post("/login", data={"api_key": cloud.tokens[Role.VIEWER], "next": "/models"})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/models"
        cookie = signed_in.headers["set-cookie"]
        assert re.search(r"HttpOnly", cookie) and re.search(r"SameSite=strict", cookie, re.IGNORECASE)
        assert "Secure" not in cookie  # plain HTTP on loopback; under TLS it is Secure
        assert cloud.http.get("/models").status_code == 200


def test_sign_in_goes_back_only_to_this_site(config) -> None:
    with served_cloud(config) as cloud:
        for elsewhere in ("//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
            answer = cloud.http.post("/login", data={"api_key": cloud.tokens[Role.VIEWER], "next": elsewhere})
            assert answer.headers["location"] == "/", elsewhere


def test_a_viewer_sees_no_control_and_a_forged_post_is_refused(config) -> None:
    with served_cloud(config) as cloud, sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        token = csrf_of(viewer)
        page = viewer.get("/models/component_failure")  # unknown model: still a page, not JSON
        assert page.status_code == 404 and "text/html" in page.headers["content-type"]

        forged = viewer.post("/models/component_failure/rollback", data={"reason": "x", CSRF_FIELD: token})
        assert forged.status_code == 403 and "needs the operator role" in forged.text


def test_every_change_needs_the_session_csrf_token(config) -> None:
    with served_cloud(config) as cloud, sign_in(cloud.base_url, cloud.tokens[Role.OPERATOR]) as operator:
        for sent in ({}, {CSRF_FIELD: "wrong"}):
            answer = operator.post("/models/component_failure/rollback", data={"reason": "x"} | sent)
            assert answer.status_code == 403 and "CSRF" in answer.text
        # the token is the session's: another operator's session's token does not open this one
        with sign_in(cloud.base_url, cloud.tokens[Role.ADMIN]) as admin:
            other = csrf_of(admin)
        answer = operator.post("/models/component_failure/rollback", data={"reason": "x", CSRF_FIELD: other})
        assert answer.status_code == 403


def test_sign_out_ends_the_session_on_the_server(config) -> None:
    with served_cloud(config) as cloud, sign_in(cloud.base_url, cloud.tokens[Role.VIEWER]) as viewer:
        stolen = viewer.cookies[COOKIE]
        assert viewer.post("/logout", data={CSRF_FIELD: csrf_of(viewer)}).status_code == 303
        with httpx.Client(base_url=cloud.base_url, cookies={COOKIE: stolen}) as replay:
            assert replay.get("/models", follow_redirects=False).status_code == 303


def test_the_api_docs_load_their_assets_from_the_cloud_itself(config) -> None:
    with served_cloud(config) as cloud:
        page = cloud.http.get("/docs")
        assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", page.text)
        assert page.status_code == 200 and assets
        assert all(asset.startswith("/static/") for asset in assets), assets
        for asset in assets:
            assert cloud.http.get(asset).status_code == 200, asset
        assert cloud.http.get("/openapi.json").json()["paths"]  # what the page draws


def test_the_vendored_libraries_carry_their_licences() -> None:
    versions = (STATIC / "vendor" / "VERSIONS").read_text().split("\n")
    libraries = [line.split()[0] for line in versions if line]
    assert libraries == ["htmx.org", "uplot", "swagger-ui-dist", "axe-core"]
    for folder in ("htmx", "uplot", "swagger-ui"):
        assert (STATIC / "vendor" / folder / "LICENSE").stat().st_size > 0


def test_pages_and_their_assets_go_out_gzipped_and_the_api_as_before(config) -> None:
    db = open_database(config.database_path)
    try:
        for n in range(5):  # the API's list of keys grows past the size a page would be compressed at
            KeyStore(db).create(Role.VIEWER, f"reader {n}")
    finally:
        db.conn.close()
    with served_cloud(config) as cloud, sign_in(cloud.base_url, cloud.tokens[Role.ADMIN]) as admin:
        gzip = {"Accept-Encoding": "gzip"}
        for path in ("/fleet", "/admin/keys", "/static/vendor/htmx/htmx.min.js", "/static/app.css", "/openapi.json"):
            answer = admin.get(path, headers=gzip)
            assert answer.status_code == 200 and answer.headers.get("content-encoding") == "gzip", path
            assert answer.num_bytes_downloaded < len(answer.content), path  # httpx decoded what came compressed
        plain = admin.get("/fleet", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.num_bytes_downloaded == len(plain.content)
        small = admin.get("/healthz", headers=gzip)  # a few bytes: not worth compressing
        assert small.status_code == 200 and len(small.content) < 1024 and "content-encoding" not in small.headers
        api = cloud.http.get("/api/admin/keys", headers={**gzip, "X-API-Key": cloud.tokens[Role.ADMIN]})
        assert api.status_code == 200 and len(api.content) > 1024  # large enough to compress, were it a page
        assert "content-encoding" not in api.headers
