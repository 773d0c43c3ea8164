"""Predictions the gateways made for water heaters, as ingest stored them."""

from __future__ import annotations

from typing import Annotated

import sqlite_utils
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from cloud.api.deps import Database, require_role
from cloud.api.errors import error_responses
from cloud.api.roles import Role
from cloud.data import fleet
from cloud.data.connections import connection_of
from cloud.errors import NotFound
from cloud.predictions import StoredPrediction, find_predictions
from shared.messages import Arm, PredictionType

router = APIRouter(
    prefix="/api/predictions/water-heaters",
    tags=["predictions"],
    dependencies=[Depends(require_role(Role.VIEWER))],
    responses=error_responses(401, 403, 404, 503),
)

_EXAMPLE = {
    "prediction_id": "7d0c5a6e2f1b4c3a9e8d7f6a5b4c3d2e",
    "device_id": "wh-0042",
    "device_type": "tank-50gal-electric",
    "gateway_id": "gw-001",
    "prediction_type": "component_failure",
    "model_name": "component_failure",
    "model_version": "3",
    "arm": "champion",
    "made_at": "2026-01-31T06:00:00Z",
    "feature_window_end": "2026-01-31T06:00:00Z",
    "outputs": {"heating_element": 0.82, "thermostat": 0.03, "sediment": 0.11, "tank_leak": 0.01, "sensor": 0.02},
    "latency_ms": 1.7,
}


class PredictionOut(StoredPrediction):
    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE]})


class PredictionHistory(BaseModel):
    device_id: str
    prediction_type: PredictionType
    predictions: list[PredictionOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"device_id": "wh-0042", "prediction_type": "component_failure", "predictions": [_EXAMPLE]}]
        }
    )


DeviceId = Annotated[str, Path(description="The water heater's device id.", examples=["wh-0042"])]
TypeName = Annotated[
    str, Path(description="One of: " + ", ".join(t.value for t in PredictionType), examples=["component_failure"])
]
ArmFilter = Annotated[
    Arm | None,
    Query(description="Only this arm; by default the served arms (champion and challenger), not shadow."),
]


def _recent(
    db: sqlite_utils.Database, device_id: str, prediction_type: str, arm: Arm | None, limit: int
) -> list[PredictionOut]:
    """Newest first; 404 that tells an unknown type, an unknown device and a missing prediction apart."""
    if prediction_type not in {t.value for t in PredictionType}:
        known = ", ".join(t.value for t in PredictionType)
        raise NotFound(f"unknown prediction type {prediction_type!r}: must be one of {known}")
    if not fleet.has_device(connection_of(db), device_id):
        raise NotFound(f"unknown device {device_id!r}: no gateway has reported it")
    arms = [arm] if arm else [Arm.CHAMPION, Arm.CHALLENGER]
    stored = find_predictions(db, device_id=device_id, prediction_type=prediction_type, arms=arms, limit=limit)
    found = [PredictionOut(**prediction.model_dump()) for prediction in stored]
    if not found:
        which = f"{arm.value} " if arm else ""
        raise NotFound(f"device {device_id!r} has no {which}{prediction_type} prediction yet")
    return found


@router.get("/{device_id}/{prediction_type}", response_model=PredictionOut)
def latest_prediction(
    db: Database,
    device_id: DeviceId,
    prediction_type: TypeName,
    arm: ArmFilter = None,
) -> PredictionOut:
    """The newest prediction of this type for this water heater."""
    return _recent(db, device_id, prediction_type, arm, limit=1)[0]


@router.get("/{device_id}/{prediction_type}/history", response_model=PredictionHistory)
def prediction_history(
    db: Database,
    device_id: DeviceId,
    prediction_type: TypeName,
    arm: ArmFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many, newest first.")] = 20,
) -> PredictionHistory:
    """Recent predictions of this type for this water heater, newest first."""
    predictions = _recent(db, device_id, prediction_type, arm, limit)
    return PredictionHistory(device_id=device_id, prediction_type=prediction_type, predictions=predictions)
