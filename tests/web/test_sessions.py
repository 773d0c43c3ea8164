"""Dashboard sessions on a real SQLite file: opened with a key, ended by idleness, age, revocation or sign-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.api.keys import KeyRejected, KeyStore
from cloud.api.roles import Role
from cloud.audit import AuditLog
from cloud.storage import open_database
from cloud.web.sessions import SessionEnded, SessionStore

NOW = datetime(2026, 12, 7, 9, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path):
    database = open_database(tmp_path / "cloud" / "iotsphere.db")
    yield database
    database.conn.close()


def test_a_key_opens_a_session_that_the_cookie_resolves_and_the_database_keeps_only_hashed(db) -> None:
    issued = KeyStore(db).create(Role.OPERATOR, "ops")
    opened = SessionStore(db, NOW).sign_in(issued.token)

    session = SessionStore(db, NOW + timedelta(minutes=5)).resolve(opened.cookie_token)

    assert session.key.key_id == issued.key.key_id and session.csrf_token == opened.session.csrf_token
    stored = db.execute("SELECT session_hash FROM web_sessions").fetchall()
    assert len(stored) == 1 and opened.cookie_token not in stored[0][0]
    assert [entry.action for entry in AuditLog(db).entries()][-1] == "web.sign-in"


def test_a_session_ends_when_idle_too_long_or_too_old_however_busy(db) -> None:
    token = KeyStore(db).create(Role.VIEWER, "v").token
    idle = SessionStore(db, NOW).sign_in(token)
    with pytest.raises(SessionEnded, match="expired"):
        SessionStore(db, NOW + timedelta(minutes=31)).resolve(idle.cookie_token)
    with pytest.raises(SessionEnded, match="not signed in"):  # and it is gone
        SessionStore(db, NOW).resolve(idle.cookie_token)

    busy = SessionStore(db, NOW).sign_in(token)
    at = NOW
    while at + timedelta(minutes=20) < NOW + timedelta(hours=12):  # used every 20 minutes, never idle
        at += timedelta(minutes=20)
        SessionStore(db, at).resolve(busy.cookie_token)
    with pytest.raises(SessionEnded, match="expired"):
        SessionStore(db, NOW + timedelta(hours=12)).resolve(busy.cookie_token)


def test_revoking_the_key_ends_its_sessions_and_sign_out_ends_one(db) -> None:
    keys = KeyStore(db)
    issued = keys.create(Role.OPERATOR, "ops")
    first, second = (SessionStore(db, NOW).sign_in(issued.token) for _ in range(2))

    SessionStore(db, NOW).sign_out(first.cookie_token)
    with pytest.raises(SessionEnded):
        SessionStore(db, NOW).resolve(first.cookie_token)
    SessionStore(db, NOW).resolve(second.cookie_token)

    keys.revoke(issued.key.key_id)
    with pytest.raises(SessionEnded, match="revoked"):
        SessionStore(db, NOW).resolve(second.cookie_token)


def test_gateway_and_unknown_keys_open_no_session(db) -> None:
    gateway = KeyStore(db).create(Role.GATEWAY, "gw", "gw-1").token
    with pytest.raises(KeyRejected, match="gateway key"):
        SessionStore(db, NOW).sign_in(gateway)
    with pytest.raises(KeyRejected):
        SessionStore(db, NOW).sign_in("iots_000000000000_" + "x" * 43)
    assert db.execute("SELECT count(*) FROM web_sessions").fetchone() == (0,)
