"""The hash-chained audit log and its signed checkpoints, both append-only.

Triggers refuse every UPDATE and DELETE of both tables, so no code path edits history by mistake; SQLAlchemy has
no construct for them, so they are in the revisions (the baseline writes them for SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, RowMapping, Table, Text, insert, select, text

from cloud.data.metadata import metadata

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("at", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("details_json", Text, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    Index("idx_audit_log_actor_id", "actor", "id"),
    Index("idx_audit_log_action_id", "action", "id"),
)


audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("count", Integer, nullable=False),
    Column("head_hash", Text, nullable=False),
    Column("at", Text, nullable=False),
    Column("keyid", Text, nullable=False),
    Column("signature", Text, nullable=False),
)


def locked_head(connection: Connection) -> RowMapping | None:
    """The newest entry's ``id`` and ``hash`` (None for an empty log), read so that no other append can take the same
    head before this transaction ends: on SQLite the caller's write transaction (``BEGIN IMMEDIATE``) already holds
    the lock; on PostgreSQL a table lock that still lets readers through is taken here, so a second appender waits
    instead of failing on the primary key."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE"))
    query = select(audit_log.c.id, audit_log.c.hash).order_by(audit_log.c.id.desc()).limit(1)
    return connection.execute(query).mappings().first()


def append(connection: Connection, row: Mapping[str, Any]) -> None:
    """Store one entry, hashes computed by the caller from the head ``locked_head`` gave in this transaction."""
    connection.execute(insert(audit_log), dict(row))


def entries(
    connection: Connection, since_id: int, limit: int, actor: str | None = None, action: str | None = None
) -> list[RowMapping]:
    """Entries after ``since_id``, oldest first, at most ``limit``, of that actor and action if given."""
    query = select(audit_log).where(audit_log.c.id > since_id).order_by(audit_log.c.id).limit(limit)
    if actor is not None:
        query = query.where(audit_log.c.actor == actor)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    return list(connection.execute(query).mappings())


def chain(connection: Connection) -> Iterator[RowMapping]:
    """Every entry, oldest first, streamed (the log can be long): read it through before the next statement."""
    yield from connection.execute(select(audit_log).order_by(audit_log.c.id)).mappings()


def add_checkpoint(connection: Connection, row: Mapping[str, Any]) -> None:
    """Store a signed checkpoint (``count``, ``head_hash``, ``at``, ``keyid``, ``signature``)."""
    connection.execute(insert(audit_checkpoints), dict(row))


def checkpoints(connection: Connection) -> list[RowMapping]:
    """Every checkpoint, in the order they were stored, without the row id."""
    columns = [column for column in audit_checkpoints.c if column.name != "id"]
    return list(connection.execute(select(*columns).order_by(audit_checkpoints.c.id)).mappings())
