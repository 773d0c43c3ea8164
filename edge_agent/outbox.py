"""Store-and-forward outbox: nothing bound for the cloud is lost to a broker outage, a crash or a reboot.

Every message is committed to a SQLite file (WAL, ``synchronous=FULL``) before any send attempt and
deleted only when the broker's PUBACK for it arrives. Rows go out by priority class, then in append
order: technician outcomes and events first (small, rare, and what people wait for), bulk features
and predictions after them, so a backlog of days goes out behind the outcomes logged during it.

Bulk channels can be bounded in bytes: a gateway offline for days keeps the newest data and drops
the oldest (never a row already handed to paho), counting every drop per channel in the same file,
so the counts survive restarts and reach the cloud in the status. Unbounded channels (outcomes
above all) are never dropped.

Several processes may share the file (the agent and ``iotsphere edge outcome``): WAL lets readers
run beside the writer and the busy timeout makes a second writer wait instead of failing.

Outcomes carry what technicians type (notes, their names), so their payloads rest sealed with the gateway's own
key (``outbox.key`` beside the file, made 0600 on first use; ``edge_agent.payload_seal``) and are opened only
when read to be sent: the cloud receives the plain message and encrypts the notes with its own key. Rows an
older agent stored in plain text, or sealed with Fernet, are sealed again when the file is opened.
``OutboxSender`` hands rows to one paho client; paho itself re-sends what is in flight after a
reconnect, so the sender hands out nothing new until that backlog is acknowledged. A row whose
PUBACK was lost to a crash is sent again after restart: delivery is at least once, and the cloud
ingests idempotently on ``msg_id``.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import paho.mqtt.client as mqtt

from edge_agent.payload_seal import PayloadSeal, is_sealed
from shared.field_cipher import FieldKeyError, key_file

log = logging.getLogger(__name__)

#: the outbox's file in an agent's data dir
OUTBOX_FILE = "outbox.sqlite3"
#: the gateway's key for payloads at rest, beside the outbox file
OUTBOX_KEY_FILE = "outbox.key"
#: channels whose payloads rest encrypted: what people type
SEALED_CHANNELS = frozenset({"outcomes"})
#: channels sent before everything else; the rest are bulk (priority 1)
URGENT_CHANNELS = frozenset({"outcomes", "events"})
#: channels that must never be dropped, whatever the configuration says
NEVER_DROPPED = frozenset({"outcomes"})
#: how long a writer waits for another process's transaction before giving up
BUSY_TIMEOUT_S = 10.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    msg_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    created_at REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 1,
    size INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox_dropped (channel TEXT PRIMARY KEY, messages INTEGER NOT NULL);
"""
#: an outbox written by an agent before priorities and bounds gets the two columns, filled from its rows
_UPGRADE = """
ALTER TABLE outbox ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
ALTER TABLE outbox ADD COLUMN size INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET size = length(payload), priority = CASE WHEN channel IN ('outcomes', 'events') THEN 0 ELSE 1 END;
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS outbox_send_order ON outbox (priority, id);
CREATE INDEX IF NOT EXISTS outbox_channel ON outbox (channel, id);
"""
# newest first, the running total of a channel's bytes; rows past the bound (and not in flight) go
_OVER_BOUND = """
SELECT id FROM (SELECT id, SUM(size) OVER (ORDER BY id DESC) AS kept FROM outbox WHERE channel = ?)
WHERE kept > ? AND id NOT IN (SELECT value FROM json_each(?))
"""


def priority_of(channel: str) -> int:
    return 0 if channel in URGENT_CHANNELS else 1


@dataclass(frozen=True)
class OutboxRow:
    id: int
    topic: str
    payload: bytes
    msg_id: str
    channel: str


class Outbox:
    """The durable queue itself; safe to share between threads and, through SQLite, between processes.

    ``bounds`` maps a channel to the most bytes of payload it may keep; channels not named are unbounded.
    """

    def __init__(self, path: Path, bounds: Mapping[str, int] | None = None):
        bounds = dict(bounds or {})
        protected = NEVER_DROPPED & bounds.keys()
        if protected:
            raise ValueError(f"{', '.join(sorted(protected))} are never dropped and cannot be bounded")
        if any(limit <= 0 for limit in bounds.values()):
            raise ValueError("outbox bounds must be positive byte counts")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.bounds = bounds
        self._lock = threading.Lock()
        #: rows handed to paho and not yet acknowledged: never dropped, never handed out twice
        self._handed: set[int] = set()
        #: sealed rows whose payload does not open with the key file: kept in the file, never sent
        self.unopened: set[int] = set()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed append survives power loss, not only a process crash
        self._db.execute("PRAGMA synchronous=FULL")
        # appends at the tail, reads and deletes at the head: SQLite's default 2 MB page cache would only
        # fill with payloads already sent (the OS caches the file anyway)
        self._db.execute("PRAGMA cache_size=-512")
        with self._transaction():
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
            if "priority" not in columns:
                for statement in filter(str.strip, _UPGRADE.split(";")):
                    self._db.execute(statement)
            for statement in filter(str.strip, _INDEXES.split(";")):
                self._db.execute(statement)
            self._seal_old_rows()

    @cached_property
    def _seal(self) -> PayloadSeal:
        """The gateway's key, read (or made) with the first sealed payload: PyNaCl (~1 MB) loads only once an
        outcome is stored or sent, never in a gateway that only serves."""
        return PayloadSeal(key_file(self.path.parent / OUTBOX_KEY_FILE))

    def _seal_old_rows(self) -> None:
        """Seal what an older agent left in plain text or sealed with Fernet, zeroing the old bytes in the file."""
        channels = json.dumps(sorted(SEALED_CHANNELS))
        rows = self._db.execute(
            "SELECT id, payload FROM outbox WHERE channel IN (SELECT value FROM json_each(?))", (channels,)
        ).fetchall()
        resealed = []
        for row_id, payload in rows:
            if is_sealed(bytes(payload)):
                continue
            try:
                resealed.append((self._seal.seal(self._seal.open(bytes(payload))), row_id))
            except FieldKeyError as exc:  # kept as it is for inspection; take() sets it aside (below)
                log.error("outbox row %d kept as stored: %s", row_id, exc)
        if resealed:
            self._db.execute("PRAGMA secure_delete = ON")
            self._db.executemany("UPDATE outbox SET payload = ? WHERE id = ?", resealed)

    def _rows(self, rows: list[tuple]) -> list[OutboxRow]:
        """Stored rows as they are sent, sealed payloads opened. A payload that does not open (its key file lost or
        replaced) is set aside, not sent and not deleted: it stays in the file for inspection, counted in
        ``unopened``, and the rows behind it go on."""
        opened = []
        for row_id, topic, stored, msg_id, channel in rows:
            payload = bytes(stored)
            if channel in SEALED_CHANNELS:
                try:
                    payload = self._seal.open(payload)
                except FieldKeyError as exc:
                    with self._lock:
                        if row_id not in self.unopened:
                            log.error("outbox row %d (%s) set aside: %s", row_id, msg_id, exc)
                        self.unopened.add(row_id)
                        self._handed.add(row_id)  # never taken again in this run
                    continue
            opened.append(OutboxRow(row_id, topic, payload, msg_id, channel))
        return opened

    def _transaction(self):
        """``BEGIN IMMEDIATE`` … ``COMMIT``: takes the write lock up front, so a busy file waits, never deadlocks."""
        return _Immediate(self._db)

    def append(self, topic: str, payload: bytes, msg_id: str, channel: str) -> int:
        """Commit one message durably, dropping the oldest of a bounded channel past its bound; return its row id.

        A payload of a sealed channel is sealed before it reaches the file; ``size`` counts the plain bytes.
        """
        stored = self._seal.seal(payload) if channel in SEALED_CHANNELS else payload
        with self._lock, self._transaction():
            cursor = self._db.execute(
                "INSERT INTO outbox (topic, payload, msg_id, channel, created_at, priority, size)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (topic, stored, msg_id, channel, time.time(), priority_of(channel), len(payload)),
            )
            limit = self.bounds.get(channel)
            if limit is not None:
                self._trim(channel, limit)
            return int(cursor.lastrowid)

    def _trim(self, channel: str, limit: int) -> None:
        over = [row[0] for row in self._db.execute(_OVER_BOUND, (channel, limit, json.dumps(list(self._handed))))]
        if not over:
            return
        self._db.executemany("DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id in over])
        self._db.execute(
            "INSERT INTO outbox_dropped (channel, messages) VALUES (?, ?)"
            " ON CONFLICT (channel) DO UPDATE SET messages = messages + excluded.messages",
            (channel, len(over)),
        )
        log.warning("outbox over its %d-byte bound for %s: dropped the %d oldest", limit, channel, len(over))

    def pending(self, limit: int = 100) -> list[OutboxRow]:
        """A look at the stored rows in send order (urgent channels first), taken or not."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, msg_id, channel FROM outbox ORDER BY priority, id LIMIT ?", (limit,)
            ).fetchall()
        return self._rows(rows)

    def take(self, limit: int = 100) -> list[OutboxRow]:
        """The next rows to send, urgent channels first, then in append order.

        Taken rows are neither dropped nor taken again until ``remove``d (acknowledged) or ``release``d.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, msg_id, channel FROM outbox"
                " WHERE id NOT IN (SELECT value FROM json_each(?)) ORDER BY priority, id LIMIT ?",
                (json.dumps(list(self._handed)), limit),
            ).fetchall()
            self._handed.update(row[0] for row in rows)
        return self._rows(rows)

    def release(self, row_ids: list[int]) -> None:
        """Taken rows that were not sent after all: they wait for the next ``take``."""
        with self._lock:
            self._handed.difference_update(row_ids)

    def remove(self, row_ids: list[int]) -> None:
        """Acknowledged rows leave the file."""
        if not row_ids:
            return
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(row_id,) for row_id in row_ids])
            self._handed.difference_update(row_ids)

    def queued_msg_ids(self, channel: str) -> set[str]:
        """The ``msg_id`` of every message of ``channel`` still to be acknowledged by the broker."""
        with self._lock:
            rows = self._db.execute("SELECT msg_id FROM outbox WHERE channel = ?", (channel,)).fetchall()
        return {row[0] for row in rows}

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def depth_by_channel(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT channel, COUNT(*) FROM outbox GROUP BY channel").fetchall()
        return {channel: int(count) for channel, count in rows}

    def bytes_by_channel(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT channel, SUM(size) FROM outbox GROUP BY channel").fetchall()
        return {channel: int(size) for channel, size in rows}

    def dropped(self) -> dict[str, int]:
        """Messages dropped per channel over the file's whole life."""
        with self._lock:
            rows = self._db.execute("SELECT channel, messages FROM outbox_dropped").fetchall()
        return {channel: int(count) for channel, count in rows}

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _Immediate:
    def __init__(self, db: sqlite3.Connection):
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


class OutboxSender:
    """Moves outbox rows to the broker over one paho client (QoS 1), removing each on its PUBACK.

    The agent owns the client and its connection callbacks and tells the sender about connection
    changes (``connected`` / ``disconnected``); the sender takes over ``on_publish``. All outbox reads
    and deletes happen on the sender's own thread, so paho's network thread never waits on SQLite.
    Rows appended by another process (a technician's outcome) are found on the next poll.
    """

    def __init__(self, outbox: Outbox, client: mqtt.Client, window: int = 100, poll_s: float = 1.0):
        self.outbox = outbox
        self.client = client
        #: most rows handed to paho and not yet acknowledged (bounds memory during an outage)
        self.window = window
        self.poll_s = poll_s
        client.on_publish = self._on_publish
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._online = False
        #: paho message id → outbox row id, in hand-out order
        self._in_flight: dict[int, int] = {}
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
            self._wake.wait(self.poll_s)
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
        rows = self.outbox.take(room)
        for sent, row in enumerate(rows):
            info = self.client.publish(row.topic, row.payload, qos=1)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                # not queued by paho (e.g. payload refused): stop here and retry from this row later, in order
                log.warning("paho refused outbox row %s (%s): %s", row.id, row.channel, mqtt.error_string(info.rc))
                self.outbox.release([r.id for r in rows[sent:]])
                return
            # NO_CONN still queues a QoS 1 message inside paho, which sends it on reconnect
            self._in_flight[info.mid] = row.id
