"""Leases on ingest workers' broker sessions: who may connect to each session, so none is left holding messages.

A worker's persistent session keeps its share of the shared subscription while the worker is away (measured in
docs/ingest_sessions.md). The lease says who may connect to that session right now: the worker itself while it
renews its lease, or, once the lease has lapsed, a peer that takes it over to store what the session queued and
end the session. Whoever connects to a session holds its lease first, so a worker that comes back waits for an
adoption in progress instead of fighting over the session. Each holder states when its lease lapses, so workers
configured with different staleness bounds still agree. This module owns the ``ingest_sessions`` table (created by
a migration in cloud.storage); times are Unix seconds from the clock of the one machine whose SQLite file every
worker shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

TABLE = "ingest_sessions"


class LeaseHeld(ConnectionError):
    """Someone else holds the session's lease (its worker is alive, or a peer is adopting it), or it belongs
    to another subscription."""


@dataclass(frozen=True)
class Lease:
    client_id: str  # the broker session
    topic_filter: str  # what the session subscribes to: only workers storing the same stream may adopt it
    holder: str  # who may connect to the session: its own worker (holder == client_id), or an adopter
    lapses_at: float


class SessionLeases:
    """The ``ingest_sessions`` table: take, renew, hand back and drop the lease on a broker session."""

    def __init__(self, db: sqlite_utils.Database, ttl: float, clock: Callable[[], float] = time.time) -> None:
        """``ttl``: seconds after its last renewal that a lease this holder takes lapses."""
        self._conn = db.conn
        self.ttl = ttl
        self._clock = clock

    def acquire(self, client_id: str, topic_filter: str, holder: str) -> Lease:
        """Take the lease for ``holder`` if nobody holds it, it lapsed, or ``holder`` has it; else raise LeaseHeld."""
        now = self._clock()
        with self._conn:  # one write transaction: two peers cannot both take a lapsed lease
            self._conn.execute(
                f"INSERT OR IGNORE INTO {TABLE} (client_id, topic_filter, holder, lapses_at) VALUES (?, ?, ?, ?)",
                (client_id, topic_filter, holder, now + self.ttl),
            )
            taken = self._conn.execute(
                f"UPDATE {TABLE} SET holder = ?, lapses_at = ? WHERE client_id = ? AND topic_filter = ?"
                " AND (holder = ? OR lapses_at < ?)",
                (holder, now + self.ttl, client_id, topic_filter, holder, now),
            ).rowcount
        lease = self.get(client_id)
        if taken:
            return lease
        if lease.topic_filter != topic_filter:
            raise LeaseHeld(f"session {client_id!r} subscribes to {lease.topic_filter!r}, not {topic_filter!r}")
        raise LeaseHeld(
            f"session {client_id!r} is held by {lease.holder!r}; the lease lapses in {lease.lapses_at - now:.1f} s "
            "unless renewed"
        )

    def renew(self, client_id: str, holder: str) -> bool:
        """Extend ``holder``'s lease; False if it lost the lease (a peer adopted the session after it lapsed)."""
        with self._conn:
            return bool(
                self._conn.execute(
                    f"UPDATE {TABLE} SET lapses_at = ? WHERE client_id = ? AND holder = ?",
                    (self._clock() + self.ttl, client_id, holder),
                ).rowcount
            )

    def hand_back(self, client_id: str, holder: str) -> None:
        """An adopter that gave up returns the lease to the session's own worker, renewed now: the worker may
        connect at once, and peers wait a full ``ttl`` before trying again."""
        with self._conn:
            self._conn.execute(
                f"UPDATE {TABLE} SET holder = client_id, lapses_at = ? WHERE client_id = ? AND holder = ?",
                (self._clock() + self.ttl, client_id, holder),
            )

    def drop(self, client_id: str, holder: str) -> bool:
        """Forget a session that has ended for good; False if ``holder`` no longer held it."""
        with self._conn:
            deleted = self._conn.execute(f"DELETE FROM {TABLE} WHERE client_id = ? AND holder = ?", (client_id, holder))
            return bool(deleted.rowcount)

    def get(self, client_id: str) -> Lease | None:
        row = self._conn.execute(
            f"SELECT client_id, topic_filter, holder, lapses_at FROM {TABLE} WHERE client_id = ?", (client_id,)
        ).fetchone()
        return Lease(*row) if row else None

    def live(self, topic_filter: str) -> list[Lease]:
        """Sessions of this subscription whose lease is held and renewed: their worker (or adopter) runs."""
        return self._select("lapses_at >= ?", topic_filter)

    def lapsed(self, topic_filter: str) -> list[Lease]:
        """Sessions of this subscription whose lease lapsed: their worker (or its adopter) stopped renewing."""
        return self._select("lapses_at < ?", topic_filter)

    def _select(self, condition: str, topic_filter: str) -> list[Lease]:
        rows = self._conn.execute(
            f"SELECT client_id, topic_filter, holder, lapses_at FROM {TABLE}"
            f" WHERE topic_filter = ? AND {condition} ORDER BY lapses_at",
            (topic_filter, self._clock()),
        ).fetchall()
        return [Lease(*row) for row in rows]
