"""Messages and rows refused, kept (encrypted) with why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Integer, LargeBinary, RowMapping, Table, Text, func, insert, select

from cloud.data.bulk import BulkInsert
from cloud.data.metadata import metadata

dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("topic", Text),
    Column("payload", LargeBinary),
    Column("reason", Text),
    Column("received_at", Text),
)


#: a dead letter as ``add`` takes it (the payload as it rests: encrypted by ``cloud.dead_letters``)
LETTER = ("topic", "payload", "reason", "received_at")
_NEW = BulkInsert(lambda _insert, _: insert(dead_letters), LETTER)


def add(connection: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Keep the dead letters (rows in ``LETTER`` order)."""
    _NEW.write(connection, rows)


def newest(connection: Connection, limit: int) -> list[RowMapping]:
    """The newest ``limit`` dead letters, newest first."""
    query = select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    return list(connection.execute(query).mappings())


def count_received(connection: Connection, start: str, end: str) -> int:
    """How many dead letters were received in [start, end)."""
    query = select(func.count()).where(dead_letters.c.received_at >= start, dead_letters.c.received_at < end)
    return connection.execute(query).scalar_one()


def count(connection: Connection) -> int:
    """Dead letters kept."""
    return connection.execute(select(func.count()).select_from(dead_letters)).scalar_one()
