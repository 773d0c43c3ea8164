"""Leader locks: each periodic job runs in one process at a time, whatever number of processes run it (issue 13 §3).

A job's leader holds its lock for as long as it leads, and the lock dies with the process that holds it, so there
is no lease to renew and no clock to trust: a follower tries again every few seconds (``cloud.workers``).

- PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on a connection of its own, kept open for the
  job's life. The server releases it when that session ends: the process killed (its socket closes at once), the
  connection cut, or the host gone (the session's TCP keepalives, set below, end it within ``KEEPALIVE_SECONDS``).
  The key is the job's name within the connection's schema, so clouds in two schemas of one database do not share
  a leader.
- SQLite: an exclusive ``flock`` on a file beside the database. A SQLite file is shared only by processes of one
  host, and the kernel releases the lock when the process holding it exits however it exits. A lease row would
  need a schema change and a clock for the same guarantee. A database in memory has one process: always leader.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os

from sqlalchemy import Connection, Engine, text
from sqlalchemy.pool import NullPool

from cloud.data import engine as engines
from cloud.data.urls import is_postgres, sqlite_file

log = logging.getLogger(__name__)

#: idle seconds, probe interval and probes after which the server ends a leader's session whose host is gone
_KEEPALIVE = (10, 5, 3)
#: at most how long PostgreSQL keeps a vanished host's lock (a process that dies on a live host releases it at once)
KEEPALIVE_SECONDS = _KEEPALIVE[0] + _KEEPALIVE[1] * _KEEPALIVE[2]


class LeaderLock:
    """The lock on one job's leadership in ``url``'s database; ``acquire`` is called before each pass."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self._engine: Engine | None = None  # made at the first try, kept: a follower tries every few seconds
        self._connection: Connection | None = None
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Whether this process leads the job now: a held lock is checked still held, else taken if free."""
        if is_postgres(self.url):
            return self._postgres()
        return self._sqlite()

    def release(self) -> None:
        """Give up the lead (closing the session or the file releases the lock)."""
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                connection.close()
            except Exception:  # a connection already broken has released its lock with its session
                log.debug("closing the %s leader connection failed", self.name, exc_info=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _postgres(self) -> bool:
        if self._connection is not None:
            try:  # the session that holds the lock must still be alive, or the lock went with it
                self._connection.execute(text("SELECT 1"))
                return True
            except Exception:
                log.warning("%s: the leader session was lost; trying to lead again", self.name)
                self.release()
        if self._engine is None:
            idle, interval, count = _KEEPALIVE
            keepalives = {"keepalives": 1, "keepalives_idle": idle, "keepalives_interval": interval}
            connect_args = {**keepalives, "keepalives_count": count}
            self._engine = engines.create(self.url, poolclass=NullPool, connect_args=connect_args)
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            for setting, value in zip(("idle", "interval", "count"), _KEEPALIVE, strict=True):
                connection.execute(text(f"SET tcp_keepalives_{setting} = {value}"))
            schema = connection.execute(text("SELECT current_schema()")).scalar()
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": lock_key(f"{schema}/{self.name}")}
            ).scalar()
        except Exception:
            connection.close()
            raise
        if not taken:
            connection.close()
            return False
        self._connection = connection
        return True

    def _sqlite(self) -> bool:
        if self._fd is not None:
            return True
        try:
            path = sqlite_file(self.url)
        except ValueError:  # in memory: one process
            return True
        fd = os.open(path.with_name(f"{path.stem}-leader-{self.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name`` (Python's ``hash`` differs per process)."""
    return int.from_bytes(hashlib.sha256(f"iotsphere-leader:{name}".encode()).digest()[:8], "big", signed=True)
