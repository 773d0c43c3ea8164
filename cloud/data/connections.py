"""The SQLAlchemy ``Connection`` the owners' queries run on, and the write transaction a change commits in.

While the services still hold the ``sqlite_utils.Database`` that ``cloud.storage.open_database`` returns, an owner
converted to SQLAlchemy Core must run on *the same* SQLite connection: a service's change and its audit entry, one
through a converted owner and one not yet, commit together or not at all. ``connection_of(db)`` gives that: a
SQLAlchemy ``Connection`` over ``db``'s own ``sqlite3`` connection (a ``StaticPool`` whose one connection is it),
kept for ``db``'s lifetime. It never begins, commits or rolls back by itself (pysqlite's ``do_begin`` emits nothing,
the pool does not reset on return, and nothing here calls ``commit``): statements run in whatever transaction
``db`` is in, and ``write_transaction`` below (or the caller's ``with db.conn:``) ends it. Once every owner is
converted, services get an engine and ``engine.begin()`` replaces both (docs/data-layer.md, "The conversion").

Errors are SQLAlchemy's (``sqlalchemy.exc.IntegrityError`` wrapping ``sqlite3.IntegrityError``), as they will be
on PostgreSQL.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import StaticPool
from sqlalchemy.util import LRUCache

#: compiled statements shared by every connection made here (an engine's own cache would die with each database
#: the API opens per request); the key includes the dialect, and every one is SQLite
_COMPILED = LRUCache(1000)
_CONNECTIONS: weakref.WeakKeyDictionary[sqlite_utils.Database, Connection] = weakref.WeakKeyDictionary()


def connection_of(db: sqlite_utils.Database) -> Connection:
    """The SQLAlchemy connection over ``db``'s SQLite connection: same transaction, same uncommitted rows."""
    connection = _CONNECTIONS.get(db)
    if connection is None:
        raw = db.conn
        engine = create_engine("sqlite://", creator=lambda: raw, poolclass=StaticPool, pool_reset_on_return=None)
        connection = engine.connect().execution_options(compiled_cache=_COMPILED)
        _CONNECTIONS[db] = connection
    return connection


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[Connection]:
    """Commit what the block wrote when it ends; roll all of it back if it raises.

    It begins with SQLite's write lock (``BEGIN IMMEDIATE``): what the change reads, and the audit log's head that
    ``AuditLog.record`` reads inside it, stay current until the commit, so a concurrent writer waits
    (``busy_timeout``) instead of making the commit fail. Inside a transaction already open it is a savepoint of it
    (sqlite-utils' ``atomic``), so an owner's own transaction nests in a service's. Yields the connection the
    block's owner queries run on.
    """
    connection = connection_of(db)
    if db.conn.in_transaction:
        with db.atomic():
            yield connection
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        db.conn.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise
