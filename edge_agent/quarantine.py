"""Telemetry the agent could not use: counted, logged, and the last few kept for inspection.

A malformed reading must never stop the agent or be silently lost from view: each one is kept
(topic, payload, reason) in a small SQLite table that holds only the most recent ``keep`` rows.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bad_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at REAL NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    reason TEXT NOT NULL
)
"""
#: payload bytes kept per message: enough to see what went wrong, bounded for a flood of junk
MAX_KEPT_PAYLOAD = 4096


@dataclass(frozen=True)
class BadMessage:
    received_at: float
    topic: str
    payload: bytes
    reason: str


class Quarantine:
    def __init__(self, path: Path, keep: int = 100):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)

    def record(self, topic: str, payload: bytes, reason: str, kind: str = "bad_telemetry") -> None:
        with self._lock:
            self.counts[kind] += 1
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO bad_messages (received_at, topic, payload, reason) VALUES (?, ?, ?, ?)",
                (time.time(), topic, payload[:MAX_KEPT_PAYLOAD], reason[:1000]),
            )
            self._db.execute(
                "DELETE FROM bad_messages WHERE id <= (SELECT MAX(id) FROM bad_messages) - ?", (self.keep,)
            )
            self._db.execute("COMMIT")

    def recent(self) -> list[BadMessage]:
        with self._lock:
            rows = self._db.execute(
                "SELECT received_at, topic, payload, reason FROM bad_messages ORDER BY id"
            ).fetchall()
        return [BadMessage(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
