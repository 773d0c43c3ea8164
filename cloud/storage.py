"""The cloud's database, brought to the current schema whenever it is opened: a SQLite file through sqlite-utils
(the default), or PostgreSQL (``cloud.data.postgres``) when the URL names it.

On SQLite, WAL mode lets the API read while the ingest worker writes. The schema is the data layer's
(``cloud.data``): a file made by a release before it first runs the legacy steps it lacks (``cloud.data.legacy``,
recorded in ``schema_migrations``), then Alembic stamps or upgrades it to the newest revision
(``cloud.data.migrations``); a new file is built by the Alembic revisions. PostgreSQL is migrated by Alembic alone.
The services query through the owners (``cloud.data``) on whichever handle is returned here (docs/data-layer.md).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from cloud.data.legacy import MIGRATIONS, migrate
from cloud.data.times import from_iso, iso, utc_time
from cloud.data.urls import is_postgres, sqlite_file, sqlite_url
from shared.private_files import private_data_dir

if TYPE_CHECKING:
    from cloud.data.connections import Database

#: ``iso``/``from_iso``/``utc_time`` are imported from here across the cloud; ``MIGRATIONS``/``migrate`` by the tests
#: that set a file back to a legacy step
__all__ = ["MIGRATIONS", "connect", "from_iso", "iso", "migrate", "open_database", "utc_time"]


def connect(target: str | Path) -> Database:
    """Connect to an existing database; raise sqlite3.Error if its file is not there (SQLAlchemy's
    ``OperationalError`` if PostgreSQL cannot be reached).

    ``target`` is as for ``open_database``. Never creates the file: a database that vanished is an error, not an
    empty database. ``check_same_thread=False`` because web and worker threads may open and close it.
    """
    if is_postgres(target):
        from cloud.data.postgres import PostgresDatabase

        return PostgresDatabase(str(target))
    path = _file(target)
    uri = f"{Path(path).resolve().as_uri()}?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute("PRAGMA synchronous=NORMAL")
    return sqlite_utils.Database(conn)


def open_database(target: str | Path) -> Database:
    """Open (creating if needed) the cloud database, migrated to the current schema.

    ``target`` is the database URL (``CloudConfig.database_url``): ``postgresql://…`` gives a
    ``cloud.data.postgres.PostgresDatabase``; ``sqlite:///PATH`` or a bare path the SQLite file in WAL mode, whose
    folder is the cloud's data folder, made private first (``shared.private_files``): the file, its ``-wal`` and
    ``-shm`` and everything else the process writes come out 0600.
    """
    if is_postgres(target):
        from cloud.data.postgres import open_migrated

        return open_migrated(str(target))
    path = _file(target)
    private_data_dir(path.parent)
    sqlite3.connect(path).close()
    db = connect(path)
    db.enable_wal()
    if db["schema_migrations"].exists():
        migrate(db)  # a no-op but for a file a release before the data layer left behind a legacy step
    if _stored_revision(db) != _head():
        _upgrade(path)
    return db


def _file(target: str | Path) -> Path:
    return sqlite_file(target) if isinstance(target, str) and "://" in target else Path(target)


def _stored_revision(db: sqlite_utils.Database) -> str | None:
    if not db["alembic_version"].exists():
        return None
    row = db.execute("SELECT version_num FROM alembic_version").fetchone()
    return row[0] if row else None


def _head() -> str:
    from cloud.data.migrations import HEAD  # Alembic and SQLAlchemy load only when there is something to migrate

    return HEAD


def _upgrade(path: Path) -> None:
    """Alembic brings the file to the newest revision in one write transaction (``cloud.data.engine``), so a process
    opening it at the same time waits and then finds nothing left to do."""
    from cloud.data import engine as engines
    from cloud.data.migrate import upgrade

    engine = engines.create(sqlite_url(path))
    try:
        with engine.begin() as connection:
            upgrade(connection)
    finally:
        engine.dispose()


def sync_every_commit(db: Database) -> None:
    """``synchronous=FULL`` on ``db``'s connection: each commit is fsynced before it returns, so what a caller
    acknowledges after a commit survives a power cut (WAL's NORMAL, set by ``connect``, may lose the last commits).
    PostgreSQL's commits are durable already (``synchronous_commit`` on, its default)."""
    if isinstance(db, sqlite_utils.Database):
        db.conn.execute("PRAGMA synchronous=FULL")
