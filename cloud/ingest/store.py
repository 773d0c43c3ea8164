"""Write one batch of uplink messages to SQLite in a single transaction, set-based and idempotent.

A message whose ``msg_id`` was stored before is skipped whole; rows that arrive again inside a new message
(same feature key, prediction id + arm, outcome id) are ignored by their primary keys, so redelivery and
gateway resends never duplicate a row. Gateways are upserted in arrival order, so the last status received
wins: a last-will ("offline") carries the ``sent_at`` of the connect that registered it, so ordering by
``sent_at`` would let a stale "online" beat it. ``last_seen`` of a gateway is therefore the cloud's receive time,
while a device's ``first_seen``/``last_seen`` are the data times it reported (window ends, predictions). An offline
status changes only ``online``, ``last_seen`` and the stored status's ``online``/``health``: the models, director
sequence and agent version stay those of the last online status, so a gateway's will never erases what the cloud
knew (``docs/edge.md``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain

import pydantic_core
from sqlalchemy import Connection

from cloud import dead_letters
from cloud.crypto_fields import cipher_for_database
from cloud.data import dead_letters as dead_letter_rows
from cloud.data import features, fleet, ingest, predictions
from cloud.data.connections import Database, write_transaction
from cloud.ingest import feature_codec
from cloud.ingest.decode import MAX_REASON_CHARS, Accepted
from cloud.ingest.feature_frame import FeatureFrame
from cloud.storage import iso
from shared.messages import Envelope, GatewayEvent, GatewayStatus, OutcomeBatch, PredictionBatch
from shared.topics import Up

#: each table's rows of a batch and the owner function writing them, in the order they are written
_WRITES: dict[str, Callable[[Connection, list[tuple]], object]] = {
    "ingested": ingest.record_messages,
    "dead_letter": dead_letter_rows.add,
    "feature_set": lambda connection, rows: features.add_feature_sets(connection, dict(rows)),
    "feature_rows": features.add_packed_rows,
    "feature_row": features.add_feature_rows,
    "device": fleet.record_devices_seen,
    "prediction": predictions.add_predictions,
    "outcome": predictions.add_outcomes,
    # an offline status (a last will, or a gateway that stopped) only marks the gateway offline; one statement, so a
    # batch holding a will and the next connect's online status still ends as the gateway is: last arrival wins
    "gateway": fleet.record_statuses,
    # an event naming a document the cloud never issued to that gateway also writes its security event (a trigger)
    "event": fleet.add_events,
}


class _Trial(Exception):
    """Raised inside a trial's transaction to roll it back."""


def _json(value: object) -> str:
    """Compact JSON, serialised in Rust: several times faster than ``json.dumps`` for a row's values."""
    return pydantic_core.to_json(value).decode()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    stored: int
    duplicates: int
    dead_lettered: int
    #: of the dead letters, messages the store raised on when stored alone (``cloud.ingest.isolation``)
    isolated: int = 0


class _Rows:
    """Rows of one batch, gathered per table so each table gets one ``executemany``."""

    def __init__(self, received_at: str, connection: Connection) -> None:
        self.received_at = received_at
        self.connection = connection  # finds the field key that encrypts outcome notes at rest
        self.times: dict[datetime, str] = {}  # a batch's rows mostly share a few window ends: format each once
        self.tables: dict[str, list[tuple]] = {name: [] for name in _WRITES}
        self.devices: dict[str, list] = {}  # device_id → [gateway_id, device_type, first_seen, last_seen]
        self.frames: list[FeatureFrame] = []
        self.feature_sets: dict[str, list[str]] = {}  # version → names, the first seen in the batch
        self._adders = {
            Up.FEATURES: self._add_features,
            Up.PREDICTIONS: self._add_predictions,
            Up.OUTCOMES: self._add_outcomes,
            Up.STATUS: self._add_status,
            Up.EVENTS: self._add_events,
        }

    def iso(self, value: datetime) -> str:
        text = self.times.get(value)
        if text is None:
            text = self.times[value] = iso(value)
        return text

    def seen(
        self, gateway_id: str, device_ids: Iterable[str], device_types: Iterable[str], times: Iterable[str]
    ) -> None:
        """Devices seen at these times: one loop for a message's rows (this runs once per feature row)."""
        devices = self.devices
        for device_id, device_type, seen in zip(device_ids, device_types, times, strict=True):
            known = devices.get(device_id)
            if known is None:
                devices[device_id] = [gateway_id, device_type, seen, seen]
            else:
                known[0] = gateway_id
                known[1] = device_type
                if seen < known[2]:
                    known[2] = seen
                elif seen > known[3]:
                    known[3] = seen

    def add(self, channel: Up, message: Envelope | FeatureFrame) -> None:
        self._adders[channel](message)
        self.tables["ingested"].append((message.msg_id, channel.value, message.gateway_id, self.received_at))

    def feature_set_conflict(self, item: Accepted) -> str | None:
        """Why a features message cannot be stored: names other than its version's, whose rows would not read back."""
        if item.channel != Up.FEATURES:
            return None
        version, names = item.message.feature_set_version, item.message.feature_names
        known = self.feature_sets.get(version)
        if known is None:
            known = features.feature_set_names(self.connection, version)
            if known is None:
                return None
            self.feature_sets[version] = known
        if known == names:
            return None
        return f"invalid: feature set {version!r} has the names {known}, this message {names}"[:MAX_REASON_CHARS]

    def _add_features(self, frame: FeatureFrame) -> None:
        """Rows wait for ``pack_features``; only the device bookkeeping loops over the rows here."""
        self.feature_sets.setdefault(frame.feature_set_version, frame.feature_names)
        self.frames.append(frame)
        self.seen(frame.gateway_id, frame.device_ids, frame.device_types, frame.window_ends)

    def pack_features(self) -> None:
        """Every feature row of the batch packed with one numpy call per width; one statement row per message."""
        self.tables["feature_set"] = list(self.feature_sets.items())
        singles, statements = self.tables["feature_row"], self.tables["feature_rows"]
        for width in {len(frame.values[0]) for frame in self.frames}:
            frames = [frame for frame in self.frames if len(frame.values[0]) == width]
            packed = feature_codec.pack(feature_codec.to_matrix(list(chain.from_iterable(f.values for f in frames))))
            size, start = feature_codec.row_bytes(width), 0
            for f in frames:
                end = start + len(f) * size
                if len(f) == 1:
                    singles.append(
                        (f.device_ids[0], f.window_ends[0], f.feature_set_version, packed[start:end], f.msg_id)
                    )
                else:
                    keys = pydantic_core.to_json(list(zip(f.device_ids, f.window_ends, strict=True)))
                    statements.append((f.feature_set_version, packed[start:end], size, f.msg_id, keys))
                start = end

    def _add_predictions(self, batch: PredictionBatch) -> None:
        rows = self.tables["prediction"]
        for p in batch.predictions:
            made_at = self.iso(p.made_at)
            window_end = self.iso(p.feature_window_end) if p.feature_window_end else None
            rows.append(
                (
                    p.prediction_id,
                    p.arm.value,
                    p.device_id,
                    p.device_type,
                    p.prediction_type.value,
                    p.model_name,
                    p.model_version,
                    _json(p.outputs),
                    p.latency_ms,
                    made_at,
                    window_end,
                    batch.gateway_id,
                    batch.msg_id,
                )
            )
            self.seen(batch.gateway_id, (p.device_id,), (p.device_type,), (made_at,))

    def _add_outcomes(self, batch: OutcomeBatch) -> None:
        rows = self.tables["outcome"]
        encrypt = cipher_for_database(self.connection).encrypt
        for o in batch.outcomes:
            rows.append(
                (
                    o.outcome_id,
                    o.device_id,
                    o.source.value,
                    self.iso(o.observed_at),
                    o.prediction_id,
                    o.component.value if o.component else None,
                    o.result.value if o.result else None,
                    o.value,
                    o.technician,
                    encrypt(o.notes),
                    batch.gateway_id,
                    self.received_at,
                )
            )

    def _add_status(self, status: GatewayStatus) -> None:
        self.tables["gateway"].append(
            (
                status.gateway_id,
                self.received_at,
                self.received_at,
                int(status.online),
                status.agent_version,
                status.director_sequence,
                status.to_json().decode(),
            )
        )

    def _add_events(self, event: GatewayEvent) -> None:
        self.tables["event"].append(
            (
                event.msg_id,
                event.gateway_id,
                event.kind.value,
                event.model_name,
                event.model_version,
                event.director_sequence,
                event.rule,
                event.detail,
                self.iso(event.sent_at),
                event.document_digest,
            )
        )


def write_batch(
    conn: Database | sqlite3.Connection,
    accepted: Sequence[Accepted],
    rejected: Iterable[DeadLetter],
    received_at: datetime,
    *,
    commit: bool = True,
) -> BatchResult:
    """Store the batch in one transaction (``BEGIN IMMEDIATE``: no lock upgrade can fail halfway); raise on error.

    ``commit=False`` writes everything and rolls it back: a trial of whether the store takes such a batch.
    """
    try:
        with write_transaction(conn) as connection:
            result = _write(connection, accepted, rejected, iso(received_at))
            if not commit:
                raise _Trial
    except _Trial:
        pass
    return result


def _write(
    connection: Connection, accepted: Sequence[Accepted], rejected: Iterable[DeadLetter], received: str
) -> BatchResult:
    rows = _Rows(received, connection)
    # payloads encrypted at rest: a refused outcome still carries its technician's notes
    letters = [(d.topic, d.payload, d.reason, received) for d in rejected]
    seen = ingest.known_messages(connection, {a.message.msg_id for a in accepted})
    stored, refused = 0, []
    for item in accepted:
        if item.message.msg_id in seen:
            continue
        if conflict := rows.feature_set_conflict(item):
            refused.append((item.topic, item.payload, conflict, received))
            continue
        seen.add(item.message.msg_id)
        rows.add(item.channel, item.message)
        stored += 1
    rows.tables["dead_letter"] = dead_letters.sealed(connection, letters + refused)
    rows.pack_features()
    rows.tables["device"] = [(device_id, *values) for device_id, values in rows.devices.items()]
    for name, table_rows in rows.tables.items():
        if table_rows:
            _WRITES[name](connection, table_rows)
    return BatchResult(stored, len(accepted) - stored - len(refused), len(rows.tables["dead_letter"]))
