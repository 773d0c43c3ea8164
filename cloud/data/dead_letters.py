"""Messages and rows refused, kept (encrypted) with why."""

from __future__ import annotations

from sqlalchemy import Column, Integer, LargeBinary, Table, Text

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
