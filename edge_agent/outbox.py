"""Store-and-forward outbox: nothing bound for the cloud is lost to a broker outage, a crash or a reboot.

Every message is committed to a SQLite file (WAL, ``synchronous=FULL``) before any send attempt and
deleted only when the broker's PUBACK for it arrives. ``OutboxSender`` hands rows to one paho client
in insertion order; paho itself re-sends what is in flight after a reconnect, so the sender hands out
nothing new until that backlog is acknowledged, which keeps the order on the wire the order of
``append``. A row whose PUBACK was lost to a crash is sent again after restart: delivery is at least
once, and the cloud ingests idempotently on ``msg_id``.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    msg_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    msg_id: str
    channel: str


class Outbox:
    """The durable queue itself; safe to share between threads."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed append survives power loss, not only a process crash
        self._db.execute("PRAGMA synchronous=FULL")
        # appends at the tail, reads and deletes at the head: SQLite's default 2 MB page cache would only
        # fill with payloads already sent (the OS caches the file anyway)
        self._db.execute("PRAGMA cache_size=-512")
        self._db.execute(_SCHEMA)

    def append(self, topic: str, payload: bytes, msg_id: str, channel: str) -> int:
        """Commit one message durably; return its row id (the send order)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO outbox (topic, payload, msg_id, channel, created_at) VALUES (?, ?, ?, ?, ?)",
                (topic, payload, msg_id, channel, time.time()),
            )
            return int(cursor.lastrowid)

    def pending(self, after_id: int = 0, limit: int = 100) -> list[OutboxRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, msg_id, channel FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxRow(row[0], row[1], bytes(row[2]), row[3], row[4]) for row in rows]

    def remove(self, row_ids: list[int]) -> None:
        if not row_ids:
            return
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id in row_ids])

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def depth_by_channel(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT channel, COUNT(*) FROM outbox GROUP BY channel").fetchall()
        return {channel: int(count) for channel, count in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class OutboxSender:
    """Moves outbox rows to the broker over one paho client (QoS 1), removing each on its PUBACK.

    The agent owns the client and its connection callbacks and tells the sender about connection
    changes (``connected`` / ``disconnected``); the sender takes over ``on_publish``. All outbox reads
    and deletes happen on the sender's own thread, so paho's network thread never waits on SQLite.
    """

    def __init__(self, outbox: Outbox, client: mqtt.Client, window: int = 100):
        self.outbox = outbox
        self.client = client
        #: most rows handed to paho and not yet acknowledged (bounds memory during an outage)
        self.window = window
        client.on_publish = self._on_publish
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._online = False
        #: paho message id → outbox row id, in hand-out order
        self._in_flight: dict[int, int] = {}
        self._last_handed = 0
        #: after a reconnect paho re-sends what is in flight; new rows wait until that is acknowledged
        self._resending = False
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)

    # -- called from other threads ------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def connected(self) -> None:
        self._online = True
        self._wake.set()

    def disconnected(self) -> None:
        self._online = False
        self._resending = True
        self._wake.set()

    def wake(self) -> None:
        """Something was appended: send it if we can."""
        self._wake.set()

    def in_flight(self) -> int:
        return len(self._in_flight)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        self._acks.put(mid)
        self._wake.set()

    # -- the sender thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self._settle_acks()
                if self._online and not self._resending:
                    self._hand_out()
            except Exception:  # a broken cycle must not end delivery: log it and try again on the next wake
                log.exception("outbox sender cycle failed")
                time.sleep(0.5)

    def _settle_acks(self) -> None:
        acked = []
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                break
            row_id = self._in_flight.pop(mid, None)
            if row_id is not None:
                acked.append(row_id)
        self.outbox.remove(acked)
        if not self._in_flight:
            self._resending = False

    def _hand_out(self) -> None:
        room = self.window - len(self._in_flight)
        if room <= 0:
            return
        for row in self.outbox.pending(self._last_handed, room):
            info = self.client.publish(row.topic, row.payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # not queued by paho (e.g. payload refused): stop here and retry this row later, in order
                log.warning("paho refused outbox row %s (%s): %s", row.id, row.channel, mqtt.error_string(info.rc))
                return
            # NO_CONN still queues a QoS 1 message inside paho, which sends it on reconnect
            self._in_flight[info.mid] = row.id
            self._last_handed = row.id
