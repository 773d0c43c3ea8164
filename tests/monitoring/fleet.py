"""Predictions, outcomes and ratings written as ingest and the feedback service store them, for known metrics."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlite_utils

from cloud.storage import iso

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def prediction(
    db: sqlite_utils.Database,
    made_at: datetime,
    outputs: dict[str, float],
    *,
    model_name: str = "component_failure",
    model_version: str = "1",
    device_id: str | None = None,
    device_type: str = "tank-50",
    arm: str = "champion",
    latency_ms: float = 1.0,
    prediction_id: str | None = None,
) -> str:
    prediction_id = prediction_id or uuid.uuid4().hex
    db["predictions"].insert(
        {
            "prediction_id": prediction_id,
            "arm": arm,
            "device_id": device_id or f"wh-{prediction_id[:8]}",
            "device_type": device_type,
            "prediction_type": model_name,
            "model_name": model_name,
            "model_version": model_version,
            "outputs_json": json.dumps(outputs),
            "latency_ms": latency_ms,
            "made_at": iso(made_at),
            "feature_window_end": iso(made_at),
            "gateway_id": "gw-1",
            "msg_id": uuid.uuid4().hex,
        }
    )
    return prediction_id


def outcome(
    db: sqlite_utils.Database,
    device_id: str,
    observed_at: datetime,
    *,
    component: str | None = None,
    result: str | None = None,
    value: float | None = None,
    source: str = "technician",
    prediction_id: str | None = None,
) -> None:
    db["outcomes"].insert(
        {
            "outcome_id": uuid.uuid4().hex,
            "device_id": device_id,
            "source": source,
            "observed_at": iso(observed_at),
            "prediction_id": prediction_id,
            "component": component,
            "result": result,
            "value": value,
            "gateway_id": "gw-1",
            "received_at": iso(observed_at + timedelta(minutes=1)),
        }
    )


def rating(db: sqlite_utils.Database, prediction_id: str, value: int) -> None:
    db["feedback"].insert(
        {
            "feedback_id": uuid.uuid4().hex,
            "prediction_id": prediction_id,
            "rating": value,
            "submitted_at": iso(T0),
        }
    )


def version(db: sqlite_utils.Database, name: str, number: str, prediction_type: str, metrics: dict) -> None:
    """A registered version as the registry stores it (only what the monitor reads matters here)."""
    db["models"].insert(
        {
            "model_name": name,
            "model_version": number,
            "prediction_type": prediction_type,
            "status": "released",
            "created_at": iso(T0 - timedelta(days=30)),
            "feature_set_version": "1",
            "device_types_json": "[]",
            "metrics_json": json.dumps(metrics),
            "lineage_json": "{}",
        }
    )
