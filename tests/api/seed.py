"""Rows as ingest and the registry write them: built from the wire models, stored through cloud.storage."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import sqlite_utils

from cloud import dead_letters
from cloud.data import dead_letters as dead_letter_rows
from cloud.data.connections import connection_of, write_transaction
from cloud.storage import iso
from shared.messages import Arm, EventKind, GatewayEvent, GatewayStatus, ModelState, Prediction, PredictionType
from tests.rows import insert_row

T0 = datetime(2026, 1, 31, 6, 0, tzinfo=UTC)


def device(db: sqlite_utils.Database, device_id: str, gateway_id: str = "gw-001") -> None:
    insert_row(
        db,
        "devices",
        {
            "device_id": device_id,
            "gateway_id": gateway_id,
            "device_type": "tank-50gal-electric",
            "first_seen": iso(T0),
            "last_seen": iso(T0),
        },
    )


def prediction(
    db: sqlite_utils.Database,
    device_id: str,
    minutes: int = 0,
    prediction_type: PredictionType = PredictionType.COMPONENT_FAILURE,
    arm: Arm = Arm.CHAMPION,
    model_version: str = "1",
    prediction_id: str | None = None,
    gateway_id: str = "gw-001",
) -> Prediction:
    made_at = T0 + timedelta(minutes=minutes)
    p = Prediction(
        prediction_id=prediction_id or uuid.uuid4().hex,
        device_id=device_id,
        device_type="tank-50gal-electric",
        prediction_type=prediction_type,
        model_name=prediction_type.value,
        model_version=model_version,
        arm=arm,
        outputs={"heating_element": 0.8, "thermostat": 0.05},
        latency_ms=1.5,
        made_at=made_at,
        feature_window_end=made_at,
    )
    insert_row(
        db,
        "predictions",
        {
            **p.model_dump(include={"prediction_id", "device_id", "device_type", "model_name", "model_version"}),
            "arm": p.arm.value,
            "prediction_type": p.prediction_type.value,
            "outputs_json": json.dumps(p.outputs),
            "latency_ms": p.latency_ms,
            "made_at": iso(p.made_at),
            "feature_window_end": iso(p.feature_window_end),
            "gateway_id": gateway_id,
            "msg_id": uuid.uuid4().hex,
        },
    )
    return p


def gateway(db: sqlite_utils.Database, gateway_id: str, online: bool = True, director_sequence: int = 7) -> None:
    status = GatewayStatus(
        gateway_id=gateway_id,
        online=online,
        agent_version="0.1.0",
        director_sequence=director_sequence,
        models=[ModelState(model_name="component_failure", active_version="2", state="committed")],
        heaters=2,
    )
    insert_row(
        db,
        "gateways",
        {
            "gateway_id": gateway_id,
            "first_seen": iso(T0),
            "last_seen": iso(T0 + timedelta(hours=1)),
            "online": int(online),
            "agent_version": status.agent_version,
            "director_sequence": director_sequence,
            "status_json": status.to_json().decode(),
        },
    )


def event(db: sqlite_utils.Database, gateway_id: str, kind: EventKind, minutes: int, rule: str | None = None) -> None:
    e = GatewayEvent(
        gateway_id=gateway_id,
        kind=kind,
        model_name="component_failure",
        model_version="2",
        director_sequence=7,
        rule=rule,
        detail=f"{kind.value} at +{minutes} min",
        sent_at=T0 + timedelta(minutes=minutes),
    )
    insert_row(
        db,
        "gateway_events",
        {
            **e.model_dump(exclude={"schema_version", "sent_at", "kind"}),
            "kind": e.kind.value,
            "sent_at": iso(e.sent_at),
        },
    )


def model_version(db: sqlite_utils.Database, name: str, version: str, status: str, days: int) -> None:
    """As MLModelRegistry.register_model writes it, plus what a release adds (targets)."""
    insert_row(
        db,
        "models",
        {
            "model_name": name,
            "model_version": version,
            "prediction_type": "component_failure",
            "status": status,
            "created_at": iso(T0 + timedelta(days=days)),
            "feature_set_version": "1",
            "device_types_json": json.dumps(["tank-50gal-electric"]),
            "metrics_json": json.dumps({"roc_auc": 0.9 + days / 100}),
            "lineage_json": json.dumps({"training_rows": 1000 * (days + 1)}),
            "release_target": f"models/{name}/{version}/release.json",
            "model_target": f"models/{name}/{version}/model.onnx",
            "model_sha256": "ab" * 32,
        },
    )


def dead_letter(db: sqlite_utils.Database, topic: str, payload: bytes, reason: str) -> None:
    """Stored as ingest stores one: the payload encrypted."""
    with write_transaction(db) as connection:
        dead_letter_rows.add(connection, dead_letters.sealed(connection_of(db), [(topic, payload, reason, iso(T0))]))
