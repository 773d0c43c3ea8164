"""``store_is_down`` on real errors of both dialects, as SQLAlchemy delivers them: the database failing (locked,
read-only, unreachable) stops ingest with nothing dead-lettered; a statement failing is a message's fault."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from cloud.data import engine as engines
from cloud.ingest.isolation import store_is_down
from tests.data.conftest import POSTGRES_URL

# a SQLite file locked by another connection
pytestmark = pytest.mark.sqlite_only


def _error(connection: Connection, statement: str) -> DBAPIError:
    with pytest.raises(DBAPIError) as raised:
        connection.execute(text(statement))
    return raised.value


def test_sqlite_locked_or_read_only_is_down_a_refused_row_is_not(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    engine = engines.create(f"sqlite:///{path}")
    holder = sqlite3.connect(path)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA busy_timeout = 50")
            assert not store_is_down(_error(connection, "INSERT INTO t VALUES (1)"))  # the row's fault
            connection.rollback()
            holder.execute("BEGIN EXCLUSIVE")
            assert store_is_down(_error(connection, "INSERT INTO t VALUES (2)"))  # locked past the timeout
            holder.rollback()
            connection.rollback()
            connection.exec_driver_sql("PRAGMA query_only = ON")
            assert store_is_down(_error(connection, "INSERT INTO t VALUES (3)"))  # read-only
    finally:
        holder.close()
        engine.dispose()


@pytest.mark.postgres
def test_postgresql_read_only_locked_or_unreachable_is_down_a_refused_row_is_not() -> None:
    engine, holder = engines.create(POSTGRES_URL), engines.create(POSTGRES_URL)
    try:
        with engine.connect() as connection, holder.connect() as holding:
            connection.execute(text("CREATE TEMP TABLE t (id INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO t VALUES (1)"))
            connection.commit()
            assert not store_is_down(_error(connection, "INSERT INTO t VALUES (1)"))  # unique violation: the row's
            connection.rollback()
            assert not store_is_down(_error(connection, "SELECT 1 / 0"))
            connection.rollback()

            connection.execute(text("SET TRANSACTION READ ONLY"))  # 25006 (a temp table would still be writable)
            assert store_is_down(_error(connection, "CREATE TABLE never_made (id INTEGER)"))
            connection.rollback()

            holding.execute(text("SELECT pg_advisory_lock(4242)"))
            connection.execute(text("SET lock_timeout = '50ms'"))
            assert store_is_down(_error(connection, "SELECT pg_advisory_xact_lock(4242)"))  # 55P03: lock timeout
            connection.rollback()
            holding.execute(text("SELECT pg_advisory_unlock(4242)"))
    finally:
        engine.dispose()
        holder.dispose()

    unreachable = engines.create("postgresql://postgres@127.0.0.1:1/test")
    with pytest.raises(DBAPIError) as raised:
        unreachable.connect()
    assert store_is_down(raised.value)  # no server: no SQLSTATE at all
    unreachable.dispose()
