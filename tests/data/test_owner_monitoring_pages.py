"""The drift page's keyset pages of recorded checks from the ``monitoring`` owner, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import monitoring


def _check(model_name: str) -> dict:
    return {
        "model_name": model_name,
        "model_version": "1",
        "checked_at": "2026-01-01",
        "status": "ok",
        "result_json": "{}",
    }


def test_checks_come_in_pages_of_one_model_below_an_id(owner_connection: Connection) -> None:
    ids = [monitoring.add_drift_check(owner_connection, _check("component_failure")) for _ in range(3)]
    monitoring.add_drift_check(owner_connection, _check("usage_pattern"))

    first = monitoring.drift_checks_before(owner_connection, "component_failure", None, 2)
    assert [row["id"] for row in first] == [ids[2], ids[1]]
    assert [row["id"] for row in monitoring.drift_checks_before(owner_connection, "component_failure", ids[1], 2)] == [
        ids[0]
    ]
