"""The ``keys`` owner's queries on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import keys


def _key(key_id: str, *, gateway_id: str | None = None, created_at: str = "2026-01-01T00:00:00.000000Z") -> dict:
    return {
        "key_id": key_id,
        "name": f"key {key_id}",
        "role": "gateway" if gateway_id else "operator",
        "secret_hash": "sha256$00",
        "created_at": created_at,
        "revoked_at": None,
        "gateway_id": gateway_id,
    }


def test_a_key_is_found_by_id_and_listed_oldest_first(owner_connection: Connection) -> None:
    keys.add(owner_connection, _key("bbb", created_at="2026-01-02T00:00:00.000000Z"))
    keys.add(owner_connection, _key("aaa", created_at="2026-01-03T00:00:00.000000Z"))

    assert keys.find(owner_connection, "bbb")["name"] == "key bbb"
    assert keys.find(owner_connection, "nosuch") is None
    assert [row["key_id"] for row in keys.every_key(owner_connection)] == ["bbb", "aaa"]


def test_a_gateway_has_a_live_key_until_it_is_revoked_once(owner_connection: Connection) -> None:
    keys.add(owner_connection, _key("gwkey", gateway_id="gw-1"))
    assert keys.live_key_of_gateway(owner_connection, "gw-1") == "gwkey"
    assert keys.live_key_of_gateway(owner_connection, "gw-2") is None

    assert keys.revoke(owner_connection, "gwkey", "2026-02-01T00:00:00.000000Z") is True
    assert keys.revoke(owner_connection, "gwkey", "2026-03-01T00:00:00.000000Z") is False
    assert keys.find(owner_connection, "gwkey")["revoked_at"] == "2026-02-01T00:00:00.000000Z"
    assert keys.live_key_of_gateway(owner_connection, "gw-1") is None
