"""Store a batch so that one message the store raises on cannot hold back every other gateway's data.

A batch is one transaction (``write_batch``). When it raises, either the store is down, and nothing can be stored
until it is back, or one message makes it raise (a value the schema let through that the store refuses, a bug):
then redelivering the batch fails the same way forever. So a batch that fails is split in halves and each half
stored on its own, down to the message that fails alone, which becomes a dead letter (``store: <exception>``);
every other message is stored and acknowledged. This holds for any exception, known or not.

What must not happen is blaming messages for a store that is down: that would turn good data into dead letters.
Errors the database reports for itself rather than a statement (SQLite: locked past the busy timeout, disk full,
read-only, I/O error, corrupt; PostgreSQL: the same by SQLSTATE class, or no server reached) stop at once, with no
split. For any other error, a message that fails alone is
dead-lettered only if the store passes a trial: a trivial write (the ``ingest_probe`` row) commits, and a known
good message of the same channel with a dead letter is written and rolled back. A store that refuses either
(a trigger or a broken schema refusing every row, a closed connection) is down: the error is raised. The caller
acknowledges only what ``on_committed`` reported, backs off, and gets the rest again from the broker.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import cache
from typing import Protocol, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

from cloud.data import ingest
from cloud.data.connections import Database, write_transaction
from cloud.ingest.decode import MAX_REASON_CHARS, Accepted, Rejected, decode
from cloud.ingest.store import BatchResult, DeadLetter, write_batch
from cloud.storage import iso
from shared.messages import (
    Envelope,
    EventKind,
    FeatureBatch,
    FeatureRow,
    FeedbackSource,
    GatewayEvent,
    GatewayStatus,
    Outcome,
    OutcomeBatch,
    Prediction,
    PredictionBatch,
    PredictionType,
)
from shared.topics import Up, up_topic

log = logging.getLogger(__name__)

#: SQLite's primary result codes that mean the database, not a statement, is failing
_STORE_DOWN = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_NOMEM,
        sqlite3.SQLITE_READONLY,
        sqlite3.SQLITE_INTERRUPT,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_CORRUPT,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
        sqlite3.SQLITE_NOTADB,
    }
)
#: PostgreSQL's SQLSTATE classes that mean the server, not a statement, is failing: connection exception,
#: insufficient resources (disk full, out of memory), operator intervention (shutdown, cancel), system (I/O) error,
#: internal error (corruption)
_SERVER_DOWN = frozenset({"08", "53", "57", "58", "XX"})
#: and single states that are no statement's fault: read-only transaction, lock not available, serialization
#: failure, deadlock (the batch goes again later)
_STATEMENT_NOT_TO_BLAME = frozenset({"25006", "55P03", "40001", "40P01"})


class Received(Protocol):
    """A message as received: its topic and bytes (what a dead letter keeps) and what ``decode`` made of it."""

    @property
    def topic(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def decoded(self) -> Accepted | Rejected: ...


R = TypeVar("R", bound=Received)


def store_isolating(
    conn: Database | sqlite3.Connection,
    batch: Sequence[R],
    received_at: datetime,
    on_committed: Callable[[Sequence[R], BatchResult], None],
) -> None:
    """Store ``batch``; ``on_committed`` gets each part as its transaction commits, in arrival order.

    Raises the store's exception when the store itself fails: the parts not yet reported are not stored.
    """
    if batch:
        _store(conn, batch, received_at, on_committed)


def _store(
    conn: Database | sqlite3.Connection,
    part: Sequence[R],
    received_at: datetime,
    on_committed: Callable[[Sequence[R], BatchResult], None],
) -> None:
    try:
        result = _write(conn, part, received_at)
    except Exception as exc:
        if store_is_down(exc):
            raise
        if len(part) > 1:
            middle = len(part) // 2
            _store(conn, part[:middle], received_at, on_committed)
            _store(conn, part[middle:], received_at, on_committed)
            return
        result = _isolate(conn, part[0], exc, received_at)
    on_committed(part, result)


def _write(conn: Database | sqlite3.Connection, part: Sequence[Received], received_at: datetime) -> BatchResult:
    accepted = [r.decoded for r in part if isinstance(r.decoded, Accepted)]
    rejected = [DeadLetter(r.topic, r.payload, r.decoded.reason) for r in part if isinstance(r.decoded, Rejected)]
    return write_batch(conn, accepted, rejected, received_at)


def _isolate(
    conn: Database | sqlite3.Connection, received: Received, error: Exception, received_at: datetime
) -> BatchResult:
    """The message failed alone: a dead letter, unless the store fails its trial too (then ``error`` is raised)."""
    channel = received.decoded.channel if isinstance(received.decoded, Accepted) else None
    if not _store_works(conn, channel, received_at):
        raise error
    # the driver's error alone: SQLAlchemy's text repeats the statement's parameters, the payload's values
    cause = error.orig if isinstance(error, DBAPIError) else error
    reason = f"store: {type(cause).__name__}: {cause}"[:MAX_REASON_CHARS]
    log.warning("a message on %s fails to store on its own; dead-lettered: %s", received.topic, reason)
    letter = DeadLetter(received.topic, received.payload, reason)
    return replace(write_batch(conn, [], [letter], received_at), isolated=1)


def store_is_down(error: BaseException) -> bool:
    """Whether the database says it (locked, full, read-only, failing, unreachable) rather than one statement
    failed: SQLite's result code, or PostgreSQL's SQLSTATE; errors arrive from SQLAlchemy wrapping the driver's."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    code = getattr(cause, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _STORE_DOWN
    state = getattr(cause, "sqlstate", None)
    if state is not None:
        return state[:2] in _SERVER_DOWN or state in _STATEMENT_NOT_TO_BLAME
    # a driver's OperationalError with no code of the server's: the connection itself failed (PostgreSQL unreachable)
    return isinstance(error, OperationalError) and not isinstance(cause, sqlite3.Error)


def _store_works(conn: Database | sqlite3.Connection, channel: Up | None, received_at: datetime) -> bool:
    """Commit the probe row (the smallest write that reaches the file), then write and roll back a good message."""
    try:
        with write_transaction(conn) as connection:
            ingest.write_probe(connection, iso(datetime.now(UTC)))
        trial = [_good_message(channel)] if channel else []
        write_batch(conn, trial, [DeadLetter("ingest-probe", b"{}", "trial")], received_at, commit=False)
    except Exception as exc:
        log.warning("the store fails a trial write too (%r): it is down, not the message", exc)
        return False
    return True


@cache
def _good_message(channel: Up) -> Accepted:
    """A message of ``channel`` every healthy store takes, through ``decode`` as every message goes."""
    gateway, device, at = "ingest-probe", "probe-heater", datetime(2026, 1, 1, tzinfo=UTC)
    messages: dict[Up, Envelope] = {
        Up.FEATURES: FeatureBatch(
            gateway_id=gateway,
            feature_set_version="probe",
            feature_names=["probe"],
            rows=[FeatureRow(device_id=device, device_type="probe", window_end=at, values=[1.0])],
        ),
        Up.PREDICTIONS: PredictionBatch(
            gateway_id=gateway,
            predictions=[
                Prediction(
                    prediction_id="probe-prediction",
                    device_id=device,
                    device_type="probe",
                    prediction_type=PredictionType.ANOMALY,
                    model_name="probe",
                    model_version="1",
                    outputs={"score": 0.5},
                    latency_ms=1.0,
                    made_at=at,
                )
            ],
        ),
        Up.OUTCOMES: OutcomeBatch(
            gateway_id=gateway,
            outcomes=[Outcome(device_id=device, source=FeedbackSource.SENSOR, observed_at=at, value=1.0, notes="p")],
        ),
        Up.STATUS: GatewayStatus(gateway_id=gateway, online=True, agent_version="probe", director_sequence=1),
        Up.EVENTS: GatewayEvent(gateway_id=gateway, kind=EventKind.HEALTH, detail="probe"),
    }
    decoded = decode(up_topic(gateway, channel, "probe"), messages[channel].to_json(), "probe")
    assert isinstance(decoded, Accepted), decoded
    return decoded
