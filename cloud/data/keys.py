"""API keys: role, secret hash, the gateway a gateway key belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Connection, RowMapping, Table, Text, insert, select, update

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


def add(connection: Connection, row: Mapping[str, Any]) -> None:
    """Store a new key's row (its secret only as its hash)."""
    connection.execute(insert(api_keys), dict(row))


def find(connection: Connection, key_id: str) -> RowMapping | None:
    """The key's row, revoked or not."""
    return connection.execute(select(api_keys).where(api_keys.c.key_id == key_id)).mappings().first()


def live_key_of_gateway(connection: Connection, gateway_id: str) -> str | None:
    """The id of the gateway's unrevoked key, if it has one."""
    query = select(api_keys.c.key_id).where(api_keys.c.gateway_id == gateway_id, api_keys.c.revoked_at.is_(None))
    return connection.execute(query).scalar()


def every_key(connection: Connection) -> list[RowMapping]:
    """Every key's row, oldest first."""
    return list(connection.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.key_id)).mappings())


def revoke(connection: Connection, key_id: str, at: str) -> bool:
    """Mark the key revoked at ``at`` unless it already is; whether this call revoked it."""
    query = update(api_keys).where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=at)
    return connection.execute(query).rowcount > 0
