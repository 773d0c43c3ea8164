"""Role enforcement over real HTTP: who gets 200, 401 and 403 on each kind of route."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from tests.api.conftest import ServedCloud, auth, served_cloud

#: one route per required role, each answering 200 on an empty database
ROUTE_FOR_ROLE = {
    Role.VIEWER: "/api/models",
    Role.OPERATOR: "/api/dead-letters",
    Role.ADMIN: "/api/admin/keys",
    Role.GATEWAY: "/tuf/metadata/root.json",
}


#: who may use which route: the expectation written out, not computed with the code under test
ALLOWED = {
    Role.VIEWER: {Role.VIEWER, Role.TECHNICIAN, Role.OPERATOR, Role.ADMIN},
    Role.OPERATOR: {Role.OPERATOR, Role.ADMIN},
    Role.ADMIN: {Role.ADMIN},
    Role.GATEWAY: {Role.GATEWAY, Role.OPERATOR, Role.ADMIN},
}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> Iterator[ServedCloud]:
    """One server for the whole matrix: it only reads, and 20 server starts would dominate the run."""
    config = CloudConfig(data_dir=tmp_path_factory.mktemp("matrix"))
    (config.tuf_dir / "metadata").mkdir(parents=True)
    (config.tuf_dir / "metadata" / "root.json").write_text('{"signed": {}}')
    with served_cloud(config) as cloud:
        yield cloud


@pytest.mark.parametrize("required", list(ROUTE_FOR_ROLE))
@pytest.mark.parametrize("held", list(Role))
def test_role_matrix(matrix: ServedCloud, held: Role, required: Role) -> None:
    tokens = matrix.tokens

    response = matrix.http.get(ROUTE_FOR_ROLE[required], headers=auth(tokens[held]))

    if held in ALLOWED[required]:
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403
        assert response.json() == {
            "detail": f"this route needs the {required.value} role; "
            f"API key {tokens[held].split('_')[1]} has {held.value}"
        }


@pytest.mark.parametrize("route", list(ROUTE_FOR_ROLE.values()))
def test_missing_key_is_401_with_a_challenge(http: httpx.Client, db, route: str) -> None:
    response = http.get(route)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'"}


def test_unknown_and_malformed_keys_are_401(http: httpx.Client, tokens) -> None:
    real = tokens[Role.ADMIN]
    forged = real[:-4] + ("AAAA" if not real.endswith("AAAA") else "BBBB")  # right key id, wrong secret
    for token, detail in [
        (forged, "unknown API key"),
        ("iots_000000000000_" + "x" * 43, "unknown API key"),
        ("hunter2", "malformed API key: expected iots_<key id>_<secret>"),
    ]:
        response = http.get("/api/models", headers=auth(token))
        assert response.status_code == 401, token
        assert response.json() == {"detail": detail}


def test_revoked_key_is_401_saying_so(http: httpx.Client, db, tokens) -> None:
    token = tokens[Role.ADMIN]
    assert http.get("/api/models", headers=auth(token)).status_code == 200
    key_id = token.split("_")[1]

    revoked = KeyStore(db).revoke(key_id)

    response = http.get("/api/models", headers=auth(token))
    assert response.status_code == 401
    assert response.json() == {"detail": f"API key {key_id} was revoked at {revoked.revoked_at}"}


def test_x_api_key_header_works_like_bearer(http: httpx.Client, tokens) -> None:
    assert http.get("/api/models", headers={"X-API-Key": tokens[Role.VIEWER]}).status_code == 200


def test_two_different_keys_are_refused(http: httpx.Client, tokens) -> None:
    headers = {**auth(tokens[Role.VIEWER]), "X-API-Key": tokens[Role.ADMIN]}

    response = http.get("/api/models", headers=headers)

    assert response.status_code == 401
    assert "two different API keys" in response.json()["detail"]
