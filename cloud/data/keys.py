"""API keys: role, secret hash, the gateway a gateway key belongs to."""

from __future__ import annotations

from sqlalchemy import Column, Table, Text

from cloud.data.metadata import metadata

api_keys = Table(
    "api_keys",
    metadata,
    Column("key_id", Text, primary_key=True, nullable=True),
    Column("name", Text),
    Column("role", Text),
    Column("secret_hash", Text),
    Column("created_at", Text),
    Column("revoked_at", Text),
    Column("gateway_id", Text),
)
