"""The health check: public, and honest when the database is gone."""

from __future__ import annotations

import httpx
import pytest

from cloud.api.roles import Role
from cloud.data.migrations import HEAD
from cloud.storage import MIGRATIONS
from tests.api.conftest import auth


def test_health_needs_no_key(http: httpx.Client) -> None:
    response = http.get("/api/health")

    assert response.status_code == 200
    latest = max(version for version, _ in MIGRATIONS)
    assert response.json() == {"status": "ok", "database_ok": True, "schema_version": latest, "revision": HEAD}


@pytest.mark.sqlite_only  # deletes the file
def test_a_vanished_database_is_503_not_an_empty_one(http: httpx.Client, config, tokens) -> None:
    for path in config.data_dir.glob("iotsphere.db*"):
        path.unlink()

    health = http.get("/api/health")
    models = http.get("/api/models", headers=auth(tokens[Role.VIEWER]))

    assert (health.status_code, health.json()) == (
        503,
        {"status": "unavailable", "database_ok": False, "schema_version": None, "revision": None},
    )
    assert models.status_code == 503 and models.json()["detail"].startswith("database unavailable")
    assert not config.database_path.exists()
