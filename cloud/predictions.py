"""Reading the predictions gateways made, as ingest stored them: the one query the API and the CLI share."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import sqlite_utils
from pydantic import BaseModel

from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of
from cloud.storage import iso
from shared.messages import Arm, PredictionType


class StoredPrediction(BaseModel):
    """One arm's prediction for one water heater (a prediction id has one row per arm that made it)."""

    prediction_id: str
    device_id: str
    device_type: str
    gateway_id: str
    prediction_type: PredictionType
    model_name: str
    model_version: str
    arm: Arm
    made_at: datetime
    feature_window_end: datetime | None
    outputs: dict[str, float]
    latency_ms: float


def find_predictions(
    db: sqlite_utils.Database,
    *,
    prediction_id: str | None = None,
    device_id: str | None = None,
    model_name: str | None = None,
    prediction_type: str | None = None,
    arms: Sequence[Arm] | None = None,
    since: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int | None = 20,
) -> list[StoredPrediction]:
    """Predictions matching every filter given (None: any), newest first, at most ``limit`` (None: all); ``before``
    (made at, prediction id) of a page's last prediction gives the next page."""
    rows = stored_predictions.find_predictions(
        connection_of(db),
        prediction_id=prediction_id,
        device_id=device_id,
        model_name=model_name,
        prediction_type=prediction_type,
        arms=[Arm(arm).value for arm in arms] if arms else None,
        since=None if since is None else iso(since),
        before=None if before is None else (iso(before[0]), before[1]),
        limit=limit,
    )
    return [StoredPrediction(**row, outputs=json.loads(row["outputs_json"])) for row in rows]
