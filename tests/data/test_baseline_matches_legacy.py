"""A new SQLite file built by the Alembic baseline is, as SQLite reports it, the file the legacy steps build: the
same tables, columns, declared types, NOT NULLs, keys, indexes (partial and expression ones included) and triggers.
So the sqlite-utils code that still queries both (until its owner is converted) cannot tell them apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command

from cloud.data import engine as engines
from cloud.data.migrate import alembic_config
from cloud.data.migrations import BASELINE
from cloud.data.urls import sqlite_url
from tests.data.conftest import legacy_file
from tests.data.schema_dump import sqlite_schema
from tests.data.test_legacy_files import LAST_LEGACY_STEP


def _baseline_file(path: Path) -> Path:
    """A new file built by the baseline revision alone (later revisions change what the legacy steps left)."""
    path.parent.mkdir(parents=True)
    engine = engines.create(sqlite_url(path))
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, BASELINE)
    engine.dispose()
    return path


def test_the_baseline_builds_the_schema_the_legacy_steps_build(tmp_path: Path) -> None:
    legacy = legacy_file(tmp_path / "legacy" / "iotsphere.db", LAST_LEGACY_STEP)
    _baseline_file(tmp_path / "new" / "iotsphere.db")

    with sqlite3.connect(legacy) as old, sqlite3.connect(tmp_path / "new" / "iotsphere.db") as new:
        old_schema, new_schema = sqlite_schema(old), sqlite_schema(new)
        legacy_steps = old.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
        recorded_steps = new.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()

    assert sorted(new_schema) == sorted(old_schema)
    for table in old_schema:
        assert new_schema[table] == old_schema[table], table
    assert recorded_steps == legacy_steps  # the health check and the legacy check read the same record


def test_the_comparison_sees_a_column_of_another_type(tmp_path: Path) -> None:
    path = _baseline_file(tmp_path / "cloud" / "iotsphere.db")
    with sqlite3.connect(path) as conn:
        before = sqlite_schema(conn)
        conn.execute("ALTER TABLE predictions ADD COLUMN extra REAL")
        assert sqlite_schema(conn) != before
