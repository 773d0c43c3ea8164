"""The ingest worker's bookkeeping: messages already stored, its write probe, its broker-session leases."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    Connection,
    Index,
    Integer,
    Row,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from cloud.data.bulk import BulkInsert
from cloud.data.metadata import FLOAT, metadata, upsert

ingested_messages = Table(
    "ingested_messages",
    metadata,
    Column("msg_id", Text, primary_key=True, nullable=True),
    Column("channel", Text),
    Column("gateway_id", Text),
    Column("received_at", Text),
)


ingest_probe = Table(
    "ingest_probe",
    metadata,
    Column("id", Integer, CheckConstraint("id = 1"), primary_key=True, nullable=True, autoincrement=False),
    Column("written_at", Text, nullable=False),
)


ingest_sessions = Table(
    "ingest_sessions",
    metadata,
    Column("client_id", Text, primary_key=True, nullable=True),
    Column("topic_filter", Text, nullable=False),
    Column("holder", Text, nullable=False),
    Column("lapses_at", FLOAT, nullable=False),
    Index("idx_ingest_sessions_topic_filter_lapses_at", "topic_filter", "lapses_at"),
)


# ---- messages already stored -----------------------------------------------------------------------------------

#: an ``ingested_messages`` row as ``record_messages`` takes it
INGESTED = ("msg_id", "channel", "gateway_id", "received_at")
_NEW_MESSAGES = BulkInsert(lambda insert, _: insert(ingested_messages).on_conflict_do_nothing(), INGESTED)


def known_messages(connection: Connection, msg_ids: Collection[str]) -> set[str]:
    """Which of ``msg_ids`` were stored before.

    The ids go as one value, a JSON array ``json_each`` unpacks (SQLite) or an array (PostgreSQL), in a statement
    built once: a batch's hundreds of ids bound one by one, in a statement built per batch, cost more to render
    and bind than the lookup itself."""
    if not msg_ids:
        return set()
    if connection.dialect.name == "sqlite":
        return set(connection.execute(_KNOWN_SQLITE, {"ids": json.dumps(list(msg_ids))}).scalars())
    return set(connection.execute(_KNOWN_ARRAY, {"ids": list(msg_ids)}).scalars())


_KNOWN_SQLITE = select(ingested_messages.c.msg_id).where(
    ingested_messages.c.msg_id.in_(
        select(func.json_each(bindparam("ids", type_=Text)).table_valued("value").c.value).scalar_subquery()
    )
)
_KNOWN_ARRAY = select(ingested_messages.c.msg_id).where(
    ingested_messages.c.msg_id == any_(bindparam("ids", type_=ARRAY(Text)))
)


def record_messages(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Mark messages stored (rows in ``INGESTED`` order); a message marked before stays as it was."""
    _NEW_MESSAGES.write(connection, rows)


def write_probe(connection: Connection, at: str) -> None:
    """The smallest write that reaches the database: the one ``ingest_probe`` row, its time set to ``at``."""
    query = upsert(connection, ingest_probe).values(id=1, written_at=at)
    connection.execute(query.on_conflict_do_update(index_elements=["id"], set_={"written_at": at}))


# ---- broker-session leases -------------------------------------------------------------------------------------

_LEASE = (
    ingest_sessions.c.client_id,
    ingest_sessions.c.topic_filter,
    ingest_sessions.c.holder,
    ingest_sessions.c.lapses_at,
)


def take_lease(
    connection: Connection, client_id: str, topic_filter: str, holder: str, now: float, lapses_at: float
) -> bool:
    """Give ``holder`` the session's lease, lapsing at ``lapses_at``, if nobody holds it, it lapsed before ``now`` or
    ``holder`` has it (and the session subscribes to ``topic_filter``); whether it did. Run it in a write
    transaction: two peers must not both take a lapsed lease."""
    row = {"client_id": client_id, "topic_filter": topic_filter, "holder": holder, "lapses_at": lapses_at}
    connection.execute(upsert(connection, ingest_sessions).values(row).on_conflict_do_nothing())
    query = (
        update(ingest_sessions)
        .where(
            ingest_sessions.c.client_id == client_id,
            ingest_sessions.c.topic_filter == topic_filter,
            or_(ingest_sessions.c.holder == holder, ingest_sessions.c.lapses_at < now),
        )
        .values(holder=holder, lapses_at=lapses_at)
    )
    return connection.execute(query).rowcount > 0


def renew_lease(connection: Connection, client_id: str, holder: str, lapses_at: float) -> bool:
    """Move ``holder``'s lease on to ``lapses_at``; False if it does not hold it."""
    query = (
        update(ingest_sessions)
        .where(ingest_sessions.c.client_id == client_id, ingest_sessions.c.holder == holder)
        .values(lapses_at=lapses_at)
    )
    return connection.execute(query).rowcount > 0


def return_lease(connection: Connection, client_id: str, holder: str, lapses_at: float) -> None:
    """Give the lease ``holder`` has back to the session's own worker, lapsing at ``lapses_at``."""
    query = (
        update(ingest_sessions)
        .where(ingest_sessions.c.client_id == client_id, ingest_sessions.c.holder == holder)
        .values(holder=ingest_sessions.c.client_id, lapses_at=lapses_at)
    )
    connection.execute(query)


def drop_lease(connection: Connection, client_id: str, holder: str) -> bool:
    """Forget the session if ``holder`` holds its lease; whether it did."""
    query = delete(ingest_sessions).where(ingest_sessions.c.client_id == client_id, ingest_sessions.c.holder == holder)
    return connection.execute(query).rowcount > 0


def find_lease(connection: Connection, client_id: str) -> Row | None:
    """(client_id, topic_filter, holder, lapses_at) of the session's lease."""
    return connection.execute(select(*_LEASE).where(ingest_sessions.c.client_id == client_id)).first()


def leases(connection: Connection, topic_filter: str, now: float, *, lapsed: bool) -> list[Row]:
    """(client_id, topic_filter, holder, lapses_at) of the subscription's leases that lapsed before ``now`` (or, with
    ``lapsed=False``, those that did not), soonest to lapse first."""
    lapses_at = ingest_sessions.c.lapses_at
    query = select(*_LEASE).where(
        ingest_sessions.c.topic_filter == topic_filter, lapses_at < now if lapsed else lapses_at >= now
    )
    return list(connection.execute(query.order_by(lapses_at)))
