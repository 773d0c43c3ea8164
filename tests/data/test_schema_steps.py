"""``cloud.data.schema.legacy_steps``, what the health checks report, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data.legacy import MIGRATIONS
from cloud.data.schema import legacy_steps


def test_a_new_database_records_every_legacy_step(owner_connection: Connection) -> None:
    assert legacy_steps(owner_connection) == {version for version, _ in MIGRATIONS}
