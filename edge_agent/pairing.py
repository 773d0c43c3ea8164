"""Pairing a technician's phone with the gateway: a short one-time code instead of a pasted token.

``iotsphere edge pair`` (another process) and the agent (when its local API starts) write codes into a small
SQLite file in the data dir (0600, like everything there); the agent's page reads them. A code is 8 Crockford
base32 characters (40 bits), valid for minutes, good for one sign-in, and kept only as a SHA-256 digest. Wrong
entries count against every live code: after ``MAX_FAILURES`` of them the codes are burned and a new one must be
asked for, so guessing is over long before it could succeed. A redeemed code opens a server-side session whose
token (in an HttpOnly cookie) is also stored as a digest, with its CSRF token, an idle and an absolute expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge_agent.outbox import BUSY_TIMEOUT_S

#: the pairing file in an agent's data dir
PAIRING_FILE = "pairing.sqlite3"
#: Crockford's base32: no I, L, O or U to misread on a phone
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 8
DEFAULT_CODE_MINUTES = 10.0


def code_terms(minutes: float) -> str:
    """What a technician is told with a code."""
    return (
        f"valid {minutes:g} minutes, works once; enter it on the technician page (`iotsphere edge pair` shows another)"
    )


#: wrong codes entered (against all live codes) before every live code is burned
MAX_FAILURES = 5
#: a session ends after this long without a request, and after a working day in any case
SESSION_IDLE_S = 2 * 3600.0
SESSION_MAX_S = 12 * 3600.0

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS codes (digest BLOB PRIMARY KEY, expires_at REAL NOT NULL,"
    " failures INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS sessions (digest BLOB PRIMARY KEY, csrf TEXT NOT NULL, created_at REAL NOT NULL,"
    " seen_at REAL NOT NULL)",
)
_MISREAD = str.maketrans({"I": "1", "L": "1", "O": "0"})


@dataclass(frozen=True)
class Session:
    csrf: str
    created_at: float


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def shown(code: str) -> str:
    """The code as printed and typed: two groups of four."""
    return f"{code[:4]}-{code[4:]}"


def normalized(entered: str) -> str:
    """What a person typed, read as Crockford reads it: any case, dashes and spaces ignored, I/L as 1, O as 0."""
    return "".join(entered.split()).replace("-", "").upper().translate(_MISREAD)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class Pairing:
    """Codes and sessions in ``data_dir/pairing.sqlite3``; shared with ``edge pair`` through SQLite."""

    def __init__(self, data_dir: Path, clock=time.time):
        path = data_dir / PAIRING_FILE
        if not path.exists():  # owner-only whatever the umask: it lets a phone in
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        self._db.execute("PRAGMA journal_mode=WAL")
        for statement in _SCHEMA:
            self._db.execute(statement)

    def issue(self, minutes: float = DEFAULT_CODE_MINUTES) -> str:
        """A new one-time code valid for ``minutes``, as ``shown``."""
        code = new_code()
        with self._lock:
            self._db.execute("DELETE FROM codes WHERE expires_at <= ?", (self.clock(),))
            self._db.execute(
                "INSERT INTO codes (digest, expires_at) VALUES (?, ?)", (_digest(code), self.clock() + minutes * 60)
            )
        return shown(code)

    def redeem(self, entered: str) -> tuple[str, Session] | None:
        """A new session (its cookie token and record) for a live code, which is used up; None for a wrong one,
        which counts against every live code."""
        offered = _digest(normalized(entered))
        now = self.clock()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                live = [row[0] for row in self._db.execute("SELECT digest FROM codes WHERE expires_at > ?", (now,))]
                # every live code is compared, with no early exit: the time taken says nothing about which matched
                matches = [digest for digest in live if hmac.compare_digest(digest, offered)]
                if not matches:
                    self._db.execute("UPDATE codes SET failures = failures + 1")
                    self._db.execute("DELETE FROM codes WHERE failures >= ? OR expires_at <= ?", (MAX_FAILURES, now))
                    self._db.execute("COMMIT")
                    return None
                self._db.execute("DELETE FROM codes WHERE digest = ?", (matches[0],))
                token, session = secrets.token_urlsafe(32), Session(secrets.token_urlsafe(32), now)
                self._db.execute("DELETE FROM sessions WHERE seen_at <= ? OR created_at <= ?", self._cutoffs(now))
                self._db.execute(
                    "INSERT INTO sessions (digest, csrf, created_at, seen_at) VALUES (?, ?, ?, ?)",
                    (_digest(token), session.csrf, now, now),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return token, session

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, its idle time reset; None when missing, unknown or expired."""
        if not token:
            return None
        now = self.clock()
        idle_cutoff, absolute_cutoff = self._cutoffs(now)
        with self._lock:
            row = self._db.execute(
                "SELECT csrf, created_at FROM sessions WHERE digest = ? AND seen_at > ? AND created_at > ?",
                (_digest(token), idle_cutoff, absolute_cutoff),
            ).fetchone()
            if row is None:
                return None
            self._db.execute("UPDATE sessions SET seen_at = ? WHERE digest = ?", (now, _digest(token)))
        return Session(*row)

    def end(self, token: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE digest = ?", (_digest(token),))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @staticmethod
    def _cutoffs(now: float) -> tuple[float, float]:
        return now - SESSION_IDLE_S, now - SESSION_MAX_S
