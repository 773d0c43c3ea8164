"""The ingest worker's bookkeeping: messages already stored, its write probe, its broker-session leases."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Index, Integer, Table, Text

from cloud.data.metadata import FLOAT, metadata

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
