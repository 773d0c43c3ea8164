"""API keys (role, secret hash, the gateway a gateway key belongs to) and the dashboard's sign-in sessions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Connection, Index, RowMapping, Table, Text, delete, insert, select, update

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

#: a signed-in browser: the cookie's token is stored only as its SHA-256, like a key's secret
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("session_hash", Text, primary_key=True),
    Column("key_id", Text, nullable=False),
    Column("csrf_token", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("last_seen_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Index("idx_web_sessions_key_id", "key_id"),
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


def add_session(connection: Connection, row: Mapping[str, Any]) -> None:
    """Store a new sign-in session."""
    connection.execute(insert(web_sessions), dict(row))


def find_session(connection: Connection, session_hash: str) -> RowMapping | None:
    """The session's row, expired or not."""
    query = select(web_sessions).where(web_sessions.c.session_hash == session_hash)
    return connection.execute(query).mappings().first()


def touch_session(connection: Connection, session_hash: str, at: str) -> None:
    """Record that the session was used at ``at`` (its idle expiry counts from there)."""
    query = update(web_sessions).where(web_sessions.c.session_hash == session_hash).values(last_seen_at=at)
    connection.execute(query)


def end_session(connection: Connection, session_hash: str) -> None:
    """Forget the session (sign-out, or found expired)."""
    connection.execute(delete(web_sessions).where(web_sessions.c.session_hash == session_hash))


def end_expired_sessions(connection: Connection, idle_before: str, now: str) -> int:
    """Forget sessions idle since before ``idle_before`` or past their absolute expiry; how many."""
    expired = (web_sessions.c.last_seen_at < idle_before) | (web_sessions.c.expires_at <= now)
    return connection.execute(delete(web_sessions).where(expired)).rowcount
