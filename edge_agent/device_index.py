"""What the gateway knows about its heaters, kept on disk for the technician's tools.

The agent records each heater the first time it hears from it, and the ids of its recent
``component_failure`` predictions (a few per heater, the newest kept), so an outcome logged on site,
possibly while the agent is stopped, can be checked against real heaters and linked to the prediction
it confirms or denies. The file also holds the gateway's identity, which tells ``iotsphere edge
outcome`` where its outcomes go. Shared between processes: WAL and a busy timeout, like the outbox.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_agent.outbox import BUSY_TIMEOUT_S
from shared.messages import Prediction, PredictionType

#: the file beside the outbox in an agent's data dir
DEVICES_FILE = "devices.sqlite3"
#: recent failure predictions kept per heater (hourly predictions: about a day)
PREDICTIONS_PER_DEVICE = 24

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS devices (device_id TEXT PRIMARY KEY, device_type TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS recent_predictions (prediction_id TEXT PRIMARY KEY, device_id TEXT NOT NULL,"
    " made_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS recent_by_device ON recent_predictions (device_id, made_at)",
    # the newest prediction of each model for each heater, whatever its type: what the technician's page shows
    "CREATE TABLE IF NOT EXISTS latest_predictions (device_id TEXT NOT NULL, model_name TEXT NOT NULL,"
    " model_version TEXT NOT NULL, prediction_type TEXT NOT NULL, prediction_id TEXT NOT NULL,"
    " outputs TEXT NOT NULL, made_at REAL NOT NULL, PRIMARY KEY (device_id, model_name))",
    # outcomes logged on site, without their notes (those rest encrypted in the outbox only): the id a page made
    # answers a second submit, the msg_id tells queued from sent
    "CREATE TABLE IF NOT EXISTS site_outcomes (outcome_id TEXT PRIMARY KEY, device_id TEXT NOT NULL,"
    " component TEXT, result TEXT, prediction_id TEXT, technician TEXT, observed_at REAL NOT NULL,"
    " msg_id TEXT NOT NULL)",
)
_PRUNE = """
DELETE FROM recent_predictions WHERE prediction_id IN (
    SELECT prediction_id FROM (
        SELECT prediction_id, ROW_NUMBER() OVER (PARTITION BY device_id ORDER BY made_at DESC) AS age
        FROM recent_predictions WHERE device_id IN (SELECT value FROM json_each(?))
    ) WHERE age > ?
)
"""


@dataclass(frozen=True)
class LatestPrediction:
    """A model's newest prediction for a heater, as the technician's page shows it."""

    model_name: str
    model_version: str
    prediction_type: str
    prediction_id: str
    outputs: dict[str, float]
    made_at: datetime


@dataclass(frozen=True)
class SiteOutcome:
    """An outcome logged on this gateway; its notes stay in the outbox, encrypted."""

    outcome_id: str
    device_id: str
    component: str | None
    result: str | None
    prediction_id: str | None
    technician: str | None
    observed_at: datetime
    msg_id: str


@dataclass(frozen=True)
class GatewayIdentity:
    """What an outcome logged outside the agent's process needs: where it goes and how far back it links."""

    gateway_id: str
    prefix: str
    horizon: timedelta


class DeviceIndex:
    def __init__(self, path: Path, predictions_per_device: int = PREDICTIONS_PER_DEVICE):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.predictions_per_device = predictions_per_device
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: a power cut may lose the last prediction ids, which only weakens one link, not the outbox
        self._db.execute("PRAGMA synchronous=NORMAL")
        with self._db:
            for statement in _SCHEMA:
                self._db.execute(statement)
        #: heaters already on disk: the agent checks every reading against this, SQLite only for a new one
        self._known = {row[0] for row in self._db.execute("SELECT device_id FROM devices")}

    # -- written by the agent ------------------------------------------------------------------------

    def set_identity(self, identity: GatewayIdentity) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO identity (key, value) VALUES (?, ?)",
                [
                    ("gateway_id", identity.gateway_id),
                    ("prefix", identity.prefix),
                    ("horizon_s", str(identity.horizon.total_seconds())),
                ],
            )

    def remember_device(self, device_id: str, device_type: str) -> None:
        """Cheap for a heater already known: only a new one costs a write."""
        if device_id in self._known:
            return
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO devices (device_id, device_type) VALUES (?, ?)", (device_id, device_type)
            )
            self._known.add(device_id)

    def remember_predictions(self, predictions: Iterable[Prediction]) -> None:
        """Keep the newest ``component_failure`` prediction ids of each heater, dropping older ones, and every
        model's newest prediction per heater."""
        predictions = list(predictions)
        latest = [
            (
                p.device_id,
                p.model_name,
                p.model_version,
                p.prediction_type.value,
                p.prediction_id,
                json.dumps(p.outputs),
                p.made_at.timestamp(),
            )
            for p in predictions
        ]
        rows = [
            (p.prediction_id, p.device_id, p.made_at.timestamp())
            for p in predictions
            if p.prediction_type is PredictionType.COMPONENT_FAILURE
        ]
        if not latest:
            return
        with self._lock, self._db:
            self._db.executemany(
                "INSERT INTO latest_predictions VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device_id, model_name)"
                " DO UPDATE SET model_version = excluded.model_version, prediction_type = excluded.prediction_type,"
                " prediction_id = excluded.prediction_id, outputs = excluded.outputs, made_at = excluded.made_at"
                " WHERE excluded.made_at >= latest_predictions.made_at",
                latest,
            )
            if rows:
                self._db.executemany(
                    "INSERT OR IGNORE INTO recent_predictions (prediction_id, device_id, made_at) VALUES (?, ?, ?)",
                    rows,
                )
                self._db.execute(_PRUNE, (json.dumps(sorted({row[1] for row in rows})), self.predictions_per_device))

    # -- read by the technician's tools ----------------------------------------------------------------

    def identity(self) -> GatewayIdentity | None:
        """The identity of the agent that last ran on this data dir, or None if none has."""
        with self._lock:
            values = dict(self._db.execute("SELECT key, value FROM identity").fetchall())
        if "gateway_id" not in values:
            return None
        return GatewayIdentity(values["gateway_id"], values["prefix"], timedelta(seconds=float(values["horizon_s"])))

    def is_known(self, device_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM devices WHERE device_id = ?", (device_id,)).fetchone() is not None

    def device_of(self, prediction_id: str) -> str | None:
        """The heater a kept prediction was made for; None when the id is not (or no longer) kept."""
        with self._lock:
            row = self._db.execute(
                "SELECT device_id FROM recent_predictions WHERE prediction_id = ?", (prediction_id,)
            ).fetchone()
        return row[0] if row else None

    def latest_prediction(self, device_id: str, since: datetime) -> str | None:
        """The newest kept failure prediction for ``device_id`` made at or after ``since``."""
        with self._lock:
            row = self._db.execute(
                "SELECT prediction_id FROM recent_predictions WHERE device_id = ? AND made_at >= ?"
                " ORDER BY made_at DESC LIMIT 1",
                (device_id, since.timestamp()),
            ).fetchone()
        return row[0] if row else None

    def heaters(self) -> list[tuple[str, str]]:
        """``(device_id, device_type)`` of every heater the gateway has heard from, by id."""
        with self._lock:
            return self._db.execute("SELECT device_id, device_type FROM devices ORDER BY device_id").fetchall()

    def latest_by_model(self, device_ids: list[str]) -> dict[str, list[LatestPrediction]]:
        """Each heater's newest prediction per model, by model name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT device_id, model_name, model_version, prediction_type, prediction_id, outputs, made_at"
                " FROM latest_predictions WHERE device_id IN (SELECT value FROM json_each(?))"
                " ORDER BY device_id, model_name",
                (json.dumps(device_ids),),
            ).fetchall()
        found: dict[str, list[LatestPrediction]] = {}
        for device_id, name, version, kind, prediction_id, outputs, made_at in rows:
            found.setdefault(device_id, []).append(
                LatestPrediction(
                    name, version, kind, prediction_id, json.loads(outputs), datetime.fromtimestamp(made_at, UTC)
                )
            )
        return found

    # -- outcomes logged on site -----------------------------------------------------------------------

    def log_outcome(self, outcome: SiteOutcome) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR IGNORE INTO site_outcomes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    outcome.outcome_id,
                    outcome.device_id,
                    outcome.component,
                    outcome.result,
                    outcome.prediction_id,
                    outcome.technician,
                    outcome.observed_at.timestamp(),
                    outcome.msg_id,
                ),
            )

    def site_outcome(self, outcome_id: str) -> SiteOutcome | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM site_outcomes WHERE outcome_id = ?", (outcome_id,)).fetchone()
        return _site_outcome(row) if row else None

    def site_outcomes(self, limit: int = 100) -> list[SiteOutcome]:
        """The newest outcomes logged on this gateway, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM site_outcomes ORDER BY observed_at DESC, rowid DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_site_outcome(row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _site_outcome(row: tuple) -> SiteOutcome:
    *head, observed_at, msg_id = row
    return SiteOutcome(*head, datetime.fromtimestamp(observed_at, UTC), msg_id)
