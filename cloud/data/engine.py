"""A SQLAlchemy engine for the cloud's database URL, set up the same way wherever the schema or a query runs.

``postgresql://`` means psycopg 3 (SQLAlchemy's bare default would be psycopg2, which the project does not install).
On SQLite the driver's own transaction handling is switched off and every transaction starts with
``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe for pysqlite): it takes the write lock at the start, so two
processes that both read and then write wait for each other at BEGIN (``busy_timeout``) instead of one failing with
"database is locked" halfway through, and DDL runs inside the transaction, so a schema change is all or nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

#: milliseconds a SQLite connection waits for another's write lock, as ``cloud.storage.connect`` waits
SQLITE_BUSY_TIMEOUT_MS = 30_000


def database_url(url: str | URL) -> URL:
    """``url`` with the driver this project uses for its dialect: psycopg 3 for PostgreSQL."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+psycopg") if parsed.drivername == "postgresql" else parsed


def create(url: str | URL, **options: Any) -> Engine:
    """An engine for ``url``; ``options`` go to ``sqlalchemy.create_engine`` (e.g. ``connect_args``)."""
    engine = create_engine(database_url(url), **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_connected)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connected(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # no implicit BEGIN: _sqlite_begin says when
    dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")
