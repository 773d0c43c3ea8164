"""The hash-chained audit log and its signed checkpoints, both append-only.

Triggers refuse every UPDATE and DELETE of both tables, so no code path edits history by mistake; SQLAlchemy has
no construct for them, so they are in the revisions (the baseline writes them for SQLite and PostgreSQL).
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

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
