"""Leases on ingest workers' broker sessions: who may connect to each session, so none is left holding messages.

A worker's persistent session keeps its share of the shared subscription while the worker is away (measured in
docs/ingest_sessions.md). The lease says who may connect to that session right now: the worker itself while it
renews its lease, or, once the lease has lapsed, a peer that takes it over to store what the session queued and
end the session. Whoever connects to a session holds its lease first, so a worker that comes back waits for an
adoption in progress instead of fighting over the session. Each holder states when its lease lapses, so workers
configured with different staleness bounds still agree. The ``ingest_sessions`` table is ``cloud.data.ingest``'s;
times are Unix seconds from the clock of the one machine whose database every worker shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from cloud.data import ingest
from cloud.data.connections import connection_of, write_transaction


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
        self._db = db
        self.ttl = ttl
        self._clock = clock

    def acquire(self, client_id: str, topic_filter: str, holder: str) -> Lease:
        """Take the lease for ``holder`` if nobody holds it, it lapsed, or ``holder`` has it; else raise LeaseHeld."""
        now = self._clock()
        with write_transaction(self._db) as connection:  # two peers cannot both take a lapsed lease
            taken = ingest.take_lease(connection, client_id, topic_filter, holder, now, now + self.ttl)
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
        with write_transaction(self._db) as connection:
            return ingest.renew_lease(connection, client_id, holder, self._clock() + self.ttl)

    def hand_back(self, client_id: str, holder: str) -> None:
        """An adopter that gave up returns the lease to the session's own worker, renewed now: the worker may
        connect at once, and peers wait a full ``ttl`` before trying again."""
        with write_transaction(self._db) as connection:
            ingest.return_lease(connection, client_id, holder, self._clock() + self.ttl)

    def drop(self, client_id: str, holder: str) -> bool:
        """Forget a session that has ended for good; False if ``holder`` no longer held it."""
        with write_transaction(self._db) as connection:
            return ingest.drop_lease(connection, client_id, holder)

    def get(self, client_id: str) -> Lease | None:
        row = ingest.find_lease(connection_of(self._db), client_id)
        return Lease(*row) if row else None

    def live(self, topic_filter: str) -> list[Lease]:
        """Sessions of this subscription whose lease is held and renewed: their worker (or adopter) runs."""
        return self._select(topic_filter, lapsed=False)

    def lapsed(self, topic_filter: str) -> list[Lease]:
        """Sessions of this subscription whose lease lapsed: their worker (or its adopter) stopped renewing."""
        return self._select(topic_filter, lapsed=True)

    def _select(self, topic_filter: str, *, lapsed: bool) -> list[Lease]:
        rows = ingest.leases(connection_of(self._db), topic_filter, self._clock(), lapsed=lapsed)
        return [Lease(*row) for row in rows]
