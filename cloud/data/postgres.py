"""The cloud's database on PostgreSQL: what ``cloud.storage.open_database`` returns for a ``postgresql://`` URL.

A ``PostgresDatabase`` is the handle the services hold in place of SQLite's ``sqlite_utils.Database``: one
SQLAlchemy ``Connection`` checked out of an engine pooled per URL (``cloud.data.engine``), given back by ``close``.
The owners' queries run on it through ``cloud.data.connections`` (``connection_of``, ``write_transaction``), the
same calls as on SQLite.

Outside a write transaction the connection is in autocommit: each read commits when it ends, so a handle a worker
keeps between passes never sits "idle in transaction" holding locks. ``write_transaction`` switches it to a real
transaction (READ COMMITTED, PostgreSQL's default) for the block and back after; nested, it is a savepoint.

Opening migrates the database to the newest revision under an advisory lock (two processes starting together:
one migrates, the other waits and finds nothing to do).
"""

from __future__ import annotations

import threading

from sqlalchemy import Connection, Dialect, Engine, text

from cloud.data import engine as engines

#: ``pg_advisory_xact_lock`` key the migration runs under (any constant; the cloud takes no other with this value)
MIGRATION_LOCK = 0x10_75_9E_E5
_ENGINES: dict[str, Engine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(url: str) -> Engine:
    """The pooled engine for ``url``, made once per process (a handle per API request checks out of its pool)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(url)
        if engine is None:
            engine = _ENGINES[url] = engines.create(url, pool_pre_ping=True)
        return engine


def dispose_engines() -> None:
    """Close every pooled connection this process holds (tests dropping their schema; a forked child)."""
    with _ENGINES_LOCK:
        for engine in _ENGINES.values():
            engine.dispose()
        _ENGINES.clear()


class PostgresDatabase:
    """One pooled connection to the cloud's PostgreSQL database, held by a service as it holds a SQLite one."""

    def __init__(self, url: str) -> None:
        self.connection: Connection = engine_for(url).connect().execution_options(isolation_level="AUTOCOMMIT")
        #: how many ``write_transaction`` blocks are open on it (``cloud.data.connections``)
        self.depth = 0

    @property
    def dialect(self) -> Dialect:
        return self.connection.dialect

    def close(self) -> None:
        """Give the connection back to the pool (rolling back whatever is open)."""
        self.connection.close()

    def __enter__(self) -> PostgresDatabase:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def open_migrated(url: str) -> PostgresDatabase:
    """A handle on ``url``'s database, migrated first to ``cloud.data.migrations.HEAD`` if it is not there."""
    from cloud.data.migrations import HEAD

    engine = engine_for(url)
    with engine.connect() as connection:
        current = stored_revision(connection)
    if current != HEAD:
        from cloud.data.migrate import upgrade

        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            if stored_revision(connection) != HEAD:  # another process may have migrated it while this one waited
                upgrade(connection)
    return PostgresDatabase(url)


def stored_revision(connection: Connection) -> str | None:
    """The Alembic revision the database is at; None for one never migrated (one query: opened often)."""
    if connection.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def is_migrated(url: str) -> bool:
    """Whether ``url``'s database has been brought to a revision (a cloud lives there); False if unreachable."""
    from sqlalchemy.exc import OperationalError

    try:
        with engine_for(url).connect() as connection:
            return stored_revision(connection) is not None
    except OperationalError:
        return False
