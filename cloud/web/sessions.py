"""Dashboard sign-in: an API key exchanged once for a server-side session the browser holds as a cookie.

The cookie carries a random token (256 bits) that the database stores only as its SHA-256 (``cloud.data.keys``,
``web_sessions``), like a key's secret: a copy of the database opens no session. A session ends when it has been idle
``web_session_idle_minutes``, when it is ``web_session_max_hours`` old however busy, at sign-out, and as soon as the
key it was opened with is revoked (every request re-reads the key). Each session has its own CSRF token, which every
form and htmx request sends back (``cloud.web.auth``). Sign-in and sign-out are audited with the key as actor.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlite_utils

from cloud.api.keys import ApiKey, KeyRejected, KeyStore
from cloud.audit import AuditLog
from cloud.config import environment
from cloud.data import keys as stored_keys
from cloud.data.connections import connection_of, write_transaction
from cloud.data.times import iso

_TOKEN_BYTES = 32
#: a session's last use is written at most this often: a page and its partial updates need not each take the write
#: lock, and idle expiry is counted in minutes
_TOUCH_EVERY = timedelta(seconds=60)


class SessionEnded(Exception):
    """No live session for this cookie: never opened, expired, signed out, or its key revoked."""


@dataclass(frozen=True)
class WebSession:
    """A signed-in browser: whose key it is, and the token its forms must send back."""

    key: ApiKey
    csrf_token: str
    expires_at: str


@dataclass(frozen=True)
class OpenedSession:
    session: WebSession
    #: the cookie's value: exists only here and in the browser
    cookie_token: str


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionStore:
    """Open, resolve and end dashboard sessions."""

    def __init__(self, db: sqlite_utils.Database, now: datetime | None = None):
        self._db = db
        self._now = now
        settings = environment()
        self.idle = timedelta(minutes=settings.web_session_idle_minutes)
        self.lifetime = timedelta(hours=settings.web_session_max_hours)

    def _clock(self) -> datetime:
        return self._now or datetime.now(UTC)

    def sign_in(self, api_token: str) -> OpenedSession:
        """Open a session for the key ``api_token`` names; raise ``KeyRejected`` (its message is safe to show)."""
        key = KeyStore(self._db).authenticate(api_token)
        if key.gateway_id is not None:
            raise KeyRejected("a gateway key cannot sign in to the dashboard")
        now = self._clock()
        token, csrf = secrets.token_urlsafe(_TOKEN_BYTES), secrets.token_urlsafe(_TOKEN_BYTES)
        expires = iso(now + self.lifetime)
        with write_transaction(self._db) as connection:
            stored_keys.end_expired_sessions(connection, iso(now - self.idle), iso(now))
            stored_keys.add_session(
                connection,
                {
                    "session_hash": _hash(token),
                    "key_id": key.key_id,
                    "csrf_token": csrf,
                    "created_at": iso(now),
                    "last_seen_at": iso(now),
                    "expires_at": expires,
                },
            )
            AuditLog(self._db).record(key.actor, "web.sign-in", key.key_id, {"role": key.role.value})
        return OpenedSession(WebSession(key, csrf, expires), token)

    def resolve(self, cookie_token: str) -> WebSession:
        """The live session of a cookie, its idle time restarted; raise ``SessionEnded``."""
        now = self._clock()
        session_hash = _hash(cookie_token)
        row = stored_keys.find_session(connection_of(self._db), session_hash)
        if row is None:
            raise SessionEnded("not signed in")
        key = KeyStore(self._db).get(row["key_id"])
        if row["expires_at"] <= iso(now) or row["last_seen_at"] < iso(now - self.idle):
            self._end(session_hash)
            raise SessionEnded("the session expired: sign in again")
        if key.revoked:
            self._end(session_hash)
            raise SessionEnded(f"API key {key.key_id} was revoked: sign in with another")
        if row["last_seen_at"] < iso(now - _TOUCH_EVERY):
            with write_transaction(self._db) as connection:
                stored_keys.touch_session(connection, session_hash, iso(now))
        return WebSession(key, row["csrf_token"], row["expires_at"])

    def _end(self, session_hash: str) -> None:
        with write_transaction(self._db) as connection:
            stored_keys.end_session(connection, session_hash)

    def sign_out(self, cookie_token: str) -> None:
        """End the session (idempotent) and audit it when there was one."""
        session_hash = _hash(cookie_token)
        with write_transaction(self._db) as connection:
            row = stored_keys.find_session(connection, session_hash)
            if row is None:
                return
            stored_keys.end_session(connection, session_hash)
            AuditLog(self._db).record(f"key:{row['key_id']}", "web.sign-out", row["key_id"], {})
