"""The Alembic history: its head is the ``HEAD`` that ``open_database`` checks, the revisions build exactly what the
owners' tables declare, and upgrading a database already at the head changes nothing."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cloud.data import engine as engines
from cloud.data.legacy import MIGRATIONS
from cloud.data.migrate import alembic_config, upgrade
from cloud.data.migrations import HEAD
from cloud.data.schema import metadata
from cloud.data.urls import sqlite_url
from cloud.storage import open_database
from tests.data.conftest import legacy_file
from tests.data.schema_dump import rows_of_every_table, sqlite_schema


def test_head_is_the_newest_revision_of_the_history() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_heads() == [HEAD]


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_the_revisions_build_what_the_tables_declare(tmp_path: Path) -> None:
    path = tmp_path / "cloud" / "iotsphere.db"
    open_database(path).conn.close()
    engine = engines.create(sqlite_url(path))
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    engine.dispose()

    assert differences == []


def test_upgrading_a_database_at_the_head_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cloud" / "iotsphere.db"
    open_database(path).conn.close()
    with sqlite3.connect(path) as conn:
        schema, rows = sqlite_schema(conn), rows_of_every_table(conn)

    engine = engines.create(sqlite_url(path))
    for _ in range(2):
        with engine.begin() as connection:
            upgrade(connection)
    engine.dispose()
    open_database(path).conn.close()

    with sqlite3.connect(path) as conn:
        assert (sqlite_schema(conn), rows_of_every_table(conn)) == (schema, rows)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


def test_two_upgrades_of_a_new_file_at_once_build_it_once(tmp_path: Path) -> None:
    """Each upgrade decides what to run inside its own BEGIN IMMEDIATE transaction: the second, started while the first
    holds the write lock, waits for it and then finds the head already there (two processes opening a new file)."""
    path = tmp_path / "cloud" / "iotsphere.db"
    path.parent.mkdir()
    first_engine, second_engine = engines.create(sqlite_url(path)), engines.create(sqlite_url(path))
    errors: list[BaseException] = []

    def second() -> None:
        try:
            with second_engine.begin() as connection:
                upgrade(connection)
        except BaseException as exc:
            errors.append(exc)

    with first_engine.begin() as connection:
        upgrade(connection)
        waiting = threading.Thread(target=second)
        waiting.start()
        time.sleep(0.3)  # let it reach BEGIN IMMEDIATE and wait; if it has not yet, it begins after the commit
    waiting.join()
    first_engine.dispose()
    second_engine.dispose()

    assert errors == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]


def test_the_baseline_refuses_a_file_the_legacy_steps_made(tmp_path: Path) -> None:
    """Run alone (the alembic command line), the baseline would meet tables it cannot create: it says what to do."""
    path = legacy_file(tmp_path / "cloud" / "iotsphere.db", MIGRATIONS[-1][0])
    engine = engines.create(sqlite_url(path))
    config = alembic_config()
    with pytest.raises(RuntimeError, match="made by the legacy steps"), engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()

    open_database(path).conn.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(HEAD,)]
