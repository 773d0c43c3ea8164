"""A change of state and its audit entry, committed together or not at all.

``write_transaction`` begins with SQLite's write lock (``BEGIN IMMEDIATE``): what the change reads and the audit
log's head that ``AuditLog.record`` reads inside it stay current until the commit, so a concurrent writer waits
(``busy_timeout``) instead of making the commit fail. Inside a transaction already open it is a savepoint of it
(sqlite-utils' ``atomic``), so a store's own transaction nests in a service's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """Commit what the block wrote when it ends; roll all of it back if it raises."""
    if db.conn.in_transaction:
        with db.atomic():
            yield
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.conn.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise
