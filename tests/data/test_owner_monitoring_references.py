"""The ``monitoring`` owner's training references on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from cloud.data import monitoring


def test_a_discarded_versions_reference_is_deleted_and_no_other(owner_connection: Connection) -> None:
    rows = [
        {"model_name": name, "model_version": version, "reference_json": "{}", "created_at": "2026-01-01"}
        for name, version in (("component_failure", "1"), ("component_failure", "2"), ("usage_pattern", "2"))
    ]
    owner_connection.execute(insert(monitoring.model_references), rows)

    monitoring.delete_reference(owner_connection, "component_failure", "2")

    kept = select(monitoring.model_references.c.model_name, monitoring.model_references.c.model_version)
    assert sorted(tuple(row) for row in owner_connection.execute(kept)) == [
        ("component_failure", "1"),
        ("usage_pattern", "2"),
    ]
