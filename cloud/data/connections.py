"""The SQLAlchemy ``Connection`` the owners' queries run on, and the write transaction a change commits in.

While the services still hold the ``sqlite_utils.Database`` that ``cloud.storage.open_database`` returns, an owner
converted to SQLAlchemy Core must run on *the same* SQLite connection: a service's change and its audit entry, one
through a converted owner and one not yet, commit together or not at all. ``connection_of(db)`` gives that: a
SQLAlchemy ``Connection`` over ``db``'s own ``sqlite3`` connection (a ``StaticPool`` whose one connection is it),
kept for ``db``'s lifetime. It never begins, commits or rolls back by itself (pysqlite's ``do_begin`` emits nothing,
the pool does not reset on return, and nothing here calls ``commit``): statements run in whatever transaction
``db`` is in, and ``write_transaction`` below (or the caller's ``with db.conn:``) ends it. Once every owner is
converted, services get an engine and ``engine.begin()`` replaces both (docs/data-layer.md, "The conversion").

Errors are SQLAlchemy's (``sqlalchemy.exc.IntegrityError`` wrapping ``sqlite3.IntegrityError``), as on
PostgreSQL.

On PostgreSQL the handle is a ``cloud.data.postgres.PostgresDatabase``: ``connection_of`` is its one pooled
connection, in autocommit outside ``write_transaction``, which runs the block in a real transaction (a savepoint
when nested), so the same service code runs on both.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import LRUCache

from cloud.data.postgres import PostgresDatabase

#: what ``cloud.storage.open_database`` returns: the SQLite file through sqlite-utils, or PostgreSQL
Database = sqlite_utils.Database | PostgresDatabase

#: compiled statements shared by every connection made here (an engine's own cache would die with each database
#: the API opens per request); the key includes the dialect, and every one is SQLite
_COMPILED = LRUCache(1000)
_CONNECTIONS: weakref.WeakKeyDictionary[sqlite_utils.Database, Connection] = weakref.WeakKeyDictionary()
#: bare sqlite3 connections with theirs (``connection_over``), the most recently used last
_RAW: OrderedDict[int, tuple[sqlite3.Connection, Connection]] = OrderedDict()
_RAW_HELD = 8


def connection_of(db: Database) -> Connection:
    """The SQLAlchemy connection over ``db``'s SQLite connection: same transaction, same uncommitted rows.

    On PostgreSQL, ``db``'s own connection; outside a write transaction the read before is ended first (in
    autocommit it has committed already: this only closes SQLAlchemy's record of it).
    """
    if isinstance(db, PostgresDatabase):
        if db.depth == 0 and db.connection.in_transaction():
            db.connection.commit()
        return db.connection
    connection = _CONNECTIONS.get(db)
    if connection is None:
        connection = _CONNECTIONS[db] = _over(db.conn)
    return connection


def connection_over(raw: sqlite3.Connection) -> Connection:
    """``connection_of`` for code handed the bare ``sqlite3`` connection (the ingest writer and its callers).

    A ``sqlite3.Connection`` takes no weak reference, so the last few are held here with theirs (identity-checked,
    so an id is never taken for another connection's): building one per batch would cost half a millisecond.
    """
    held = _RAW.get(id(raw))
    if held is not None and held[0] is raw:
        _RAW.move_to_end(id(raw))
        return held[1]
    connection = _over(raw)
    _RAW[id(raw)] = (raw, connection)
    while len(_RAW) > _RAW_HELD:
        _RAW.popitem(last=False)  # dropping it leaves the sqlite3 connection as it is (open or closed)
    return connection


def _over(raw: sqlite3.Connection) -> Connection:
    engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool, pool_reset_on_return=None)
    return engine.connect().execution_options(compiled_cache=_COMPILED)


def connection_for(db: Database | sqlite3.Connection) -> Connection:
    """``connection_of`` a handle, ``connection_over`` a bare ``sqlite3`` connection."""
    return connection_over(db) if isinstance(db, sqlite3.Connection) else connection_of(db)


def database_file(connection: Connection) -> str | None:
    """The SQLite file the connection's database lives in; None in memory or on another database."""
    if connection.dialect.name != "sqlite":
        return None
    files = [file for _, name, file, *_ in connection.exec_driver_sql("PRAGMA database_list") if name == "main"]
    return files[0] if files and files[0] else None


def in_transaction(db: Database) -> bool:
    """Whether a write transaction (or, on SQLite, any transaction) is open on ``db``: a caller's, whose end is
    not this code's to decide (nothing is delivered until it commits)."""
    return db.depth > 0 if isinstance(db, PostgresDatabase) else db.conn.in_transaction


@contextmanager
def write_transaction(db: Database | sqlite3.Connection) -> Iterator[Connection]:
    """Commit what the block wrote when it ends; roll all of it back if it raises.

    It begins with SQLite's write lock (``BEGIN IMMEDIATE``): what the change reads, and the audit log's head that
    ``AuditLog.record`` reads inside it, stay current until the commit, so a concurrent writer waits
    (``busy_timeout``) instead of making the commit fail. Inside a transaction already open it is a savepoint of it
    (sqlite-utils' ``atomic``), so an owner's own transaction nests in a service's. Yields the connection the
    block's owner queries run on. ``db`` may be the bare ``sqlite3`` connection (``connection_over``).

    On PostgreSQL the transaction is READ COMMITTED; what must not interleave (the audit log's head) the owner
    locks itself.
    """
    if isinstance(db, PostgresDatabase):
        with _postgres_transaction(db) as connection:
            yield connection
        return
    raw, connection = (db, connection_over(db)) if isinstance(db, sqlite3.Connection) else (db.conn, connection_of(db))
    if raw.in_transaction:
        with _savepoint(raw):
            yield connection
        return
    raw.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        raw.execute("COMMIT")
    except BaseException:
        if raw.in_transaction:
            raw.rollback()
        raise


@contextmanager
def _postgres_transaction(db: PostgresDatabase) -> Iterator[Connection]:
    connection = db.connection
    if db.depth:
        db.depth += 1
        try:
            with connection.begin_nested():
                yield connection
        finally:
            db.depth -= 1
        return
    if connection.in_transaction():
        connection.commit()  # the reads before, committed already in autocommit
    connection.execution_options(isolation_level="READ COMMITTED")
    db.depth = 1
    try:
        with connection.begin():
            yield connection
    finally:
        db.depth = 0
        if not connection.closed and not connection.invalidated:
            connection.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def _savepoint(raw: sqlite3.Connection) -> Iterator[None]:
    """A savepoint of the open transaction, as sqlite-utils' ``atomic`` makes one."""
    raw.execute("SAVEPOINT write_transaction")
    try:
        yield
    except BaseException:
        if raw.in_transaction:  # a RAISE(ROLLBACK) trigger ends the whole transaction, savepoints included
            raw.execute("ROLLBACK TO SAVEPOINT write_transaction")
            raw.execute("RELEASE SAVEPOINT write_transaction")
        raise
    raw.execute("RELEASE SAVEPOINT write_transaction")
