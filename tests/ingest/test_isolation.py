"""One message the store raises on is a dead letter and the rest of its batch is stored; a store that is down
turns nothing into a dead letter. On real SQLite files: a trigger, a value SQLite cannot bind, another connection
holding the lock, a read-only connection, a closed one."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import IntegrityError, ProgrammingError

from cloud.ingest.decode import Accepted, Rejected, decode
from cloud.ingest.isolation import store_isolating
from cloud.ingest.store import BatchResult
from cloud.storage import connect
from shared.topics import Up, up_topic
from tests.ingest.helpers import count, event, features, outcomes, predictions, status
from tests.rows import rows_of

# faults made with SQLite's triggers, pragmas and file locks
pytestmark = pytest.mark.sqlite_only

NOW = datetime(2026, 3, 2, tzinfo=UTC)
PREFIX = "t"
POISON = (
    "CREATE TRIGGER poison BEFORE INSERT ON gateway_events WHEN NEW.detail = 'poison'"
    " BEGIN SELECT RAISE(ABORT, 'poisoned'); END"
)


@dataclass(frozen=True)
class Item:
    topic: str
    payload: bytes
    decoded: Accepted | Rejected


def _item(message, channel: Up) -> Item:
    topic = up_topic(message.gateway_id, channel, PREFIX)
    payload = message.to_json()
    return Item(topic, payload, decode(topic, payload, PREFIX))


def _mixed_batch(poisoned: Item) -> list[Item]:
    """Ten messages of every channel from other gateways, the poisoned one in the middle, one refused by decode."""
    good = [
        _item(features(gateway="gw1", window=1), Up.FEATURES),
        _item(predictions(gateway="gw2"), Up.PREDICTIONS),
        _item(outcomes(gateway="gw3"), Up.OUTCOMES),
        _item(status(gateway="gw4"), Up.STATUS),
        _item(event(gateway="gw5"), Up.EVENTS),
    ]
    refused = Item(up_topic("gw6", Up.STATUS, PREFIX), b"{", decode(up_topic("gw6", Up.STATUS, PREFIX), b"{", PREFIX))
    later = [_item(features(gateway="gw7", window=2), Up.FEATURES), _item(event(gateway="gw8"), Up.EVENTS)]
    return [*good, poisoned, refused, *later]


class Acks:
    """What ``on_committed`` reported: every message once, in arrival order."""

    def __init__(self) -> None:
        self.items: list[Item] = []
        self.results: list[BatchResult] = []

    def __call__(self, part, result: BatchResult) -> None:
        self.items.extend(part)
        self.results.append(result)

    def total(self, field: str) -> int:
        return sum(getattr(r, field) for r in self.results)


def test_a_message_the_store_raises_on_is_a_dead_letter_and_the_others_are_stored(db):
    db.execute(POISON)
    poisoned = _item(event(gateway="gw9", detail="poison"), Up.EVENTS)
    batch = _mixed_batch(poisoned)
    acks = Acks()

    store_isolating(db, batch, NOW, acks)

    assert acks.items == batch
    assert (acks.total("stored"), acks.total("dead_lettered"), acks.total("isolated")) == (7, 2, 1)
    assert count(db, "ingested_messages") == 7
    assert count(db, "gateway_events") == 2
    [letter] = db.execute("SELECT topic, reason FROM dead_letters WHERE reason LIKE 'store:%'").fetchall()
    assert letter == (poisoned.topic, "store: IntegrityError: poisoned")  # the payload as E keeps dead letters
    assert count(db, "dead_letters") == 2  # and the malformed one, with its own reason


def test_any_exception_is_isolated_even_one_no_sqlite_error_code_describes(db):
    """The issue's example, past validation: SQLite cannot bind 2**64 (``OverflowError``, not an sqlite3 error)."""
    huge = status(gateway="gw9").model_copy(update={"director_sequence": 2**64})
    topic = up_topic("gw9", Up.STATUS, PREFIX)
    poisoned = Item(topic, b"raw bytes as received", Accepted(Up.STATUS, huge))
    acks = Acks()

    store_isolating(db, _mixed_batch(poisoned), NOW, acks)

    assert (acks.total("stored"), acks.total("isolated")) == (7, 1)
    reason = db.execute("SELECT reason FROM dead_letters WHERE topic = ?", [topic]).fetchone()[0]
    assert reason.startswith("store: OverflowError: ")
    assert {row["gateway_id"] for row in rows_of(db, "gateways")} == {"gw4"}


def test_a_store_locked_by_another_connection_dead_letters_nothing_and_takes_everything_once_free(db, config):
    db.execute(POISON)
    batch = _mixed_batch(_item(event(gateway="gw9", detail="poison"), Up.EVENTS))
    worker_conn = connect(config.database_url).conn
    worker_conn.execute("PRAGMA busy_timeout=50")
    holder = sqlite3.connect(config.database_path)
    holder.execute("BEGIN EXCLUSIVE")
    acks = Acks()

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store_isolating(worker_conn, batch, NOW, acks)
    holder.rollback()
    assert acks.items == []
    assert (count(db, "dead_letters"), count(db, "ingested_messages")) == (0, 0)

    store_isolating(worker_conn, batch, NOW, acks)
    assert acks.items == batch
    assert (count(db, "ingested_messages"), acks.total("isolated")) == (7, 1)
    holder.close()
    worker_conn.close()


def test_a_read_only_store_dead_letters_nothing_and_takes_everything_once_writable(db):
    batch = _mixed_batch(_item(event(gateway="gw9"), Up.EVENTS))
    db.execute("PRAGMA query_only=ON")
    acks = Acks()

    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store_isolating(db, batch, NOW, acks)
    assert acks.items == []

    db.execute("PRAGMA query_only=OFF")
    assert (count(db, "dead_letters"), count(db, "ingested_messages")) == (0, 0)
    store_isolating(db, batch, NOW, acks)
    assert (count(db, "ingested_messages"), count(db, "dead_letters"), acks.total("isolated")) == (8, 1, 0)


def test_a_store_that_refuses_every_message_is_down_not_every_message_bad(db, config):
    """An error with no code saying "down" (a trigger refusing every row): the trial message fails too."""
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON ingested_messages BEGIN SELECT RAISE(ABORT, 'no'); END")
    batch = _mixed_batch(_item(event(gateway="gw9"), Up.EVENTS))
    acks = Acks()

    with pytest.raises(IntegrityError):  # SQLAlchemy's, wrapping SQLite's
        store_isolating(db, batch, NOW, acks)
    assert acks.items == []
    assert (count(db, "ingested_messages"), count(db, "dead_letters")) == (0, 0)


def test_a_closed_connection_is_a_store_that_is_down(db, config):
    conn = connect(config.database_url).conn
    conn.close()
    acks = Acks()

    with pytest.raises((sqlite3.ProgrammingError, ProgrammingError)):  # SQLite's, or SQLAlchemy's wrapping it
        store_isolating(conn, _mixed_batch(_item(event(gateway="gw9"), Up.EVENTS)), NOW, acks)
    assert acks.items == []
    assert count(db, "dead_letters") == 0
