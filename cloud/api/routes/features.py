"""The feature store over HTTP: a device's feature history and latest values, and recorded training datasets."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Features, Operator, require_role
from cloud.api.errors import error_responses
from cloud.api.params import AwareIsoDatetime, Number
from cloud.api.responses import domain_response
from cloud.api.roles import Role
from cloud.feature_store import DatasetRecord, LatestValue
from shared.messages import PredictionType

router = APIRouter(tags=["features"], responses=error_responses(401, 403, 404, 503))

_VIEWER = [Depends(require_role(Role.VIEWER))]

_DATASET_EXAMPLE = {
    "dataset_id": "5f0c1d2e3a4b4c5d9e8f7a6b5c4d3e2f",
    "row_count": 48000,
    "content_hash": "3b1f0c9d8e7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c",
    "created_at": "2026-01-31T06:00:00.000000Z",
    "query": {
        "feature_names": ["recovery_rate_lower_c_per_min", "standby_loss_c_per_h"],
        "feature_set_version": "v1",
        "start_date": "2026-01-01T00:00:00.000000Z",
        "end_date": "2026-01-31T00:00:00.000000Z",
        "device_type": None,
        "horizon_seconds": 1209600,
        "as_of": "2026-01-31T06:00:00.000000Z",
    },
}


class FeatureRowOut(BaseModel):
    window_end: datetime
    #: in the order of ``feature_names``; null where the window could not compute the feature
    values: list[float | None]


class DeviceFeaturesOut(BaseModel):
    device_id: str
    feature_names: list[str]
    #: oldest first
    rows: list[FeatureRowOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": "wh-0042",
                    "feature_names": ["recovery_rate_lower_c_per_min", "standby_loss_c_per_h"],
                    "rows": [{"window_end": "2026-01-31T06:00:00Z", "values": [0.42, 1.3]}],
                }
            ]
        }
    )


@domain_response({"value": 0.42, "window_end": "2026-01-31T06:00:00.000000Z", "age_seconds": 21600.0})
class LatestValueOut(LatestValue):
    """A feature's newest value; ``age_seconds`` is how stale it is: ``as_of`` minus the end of its window."""


class LatestFeaturesOut(BaseModel):
    device_id: str
    as_of: datetime
    #: null for a feature the device never had a value for
    features: dict[str, LatestValueOut | None]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "device_id": "wh-0042",
                    "as_of": "2026-01-31T12:00:00Z",
                    "features": {
                        "recovery_rate_lower_c_per_min": {
                            "value": 0.42,
                            "window_end": "2026-01-31T06:00:00Z",
                            "age_seconds": 21600.0,
                        },
                        "energy_per_litre_heated_wh_per_k": None,
                    },
                }
            ]
        }
    )


class DatasetRequest(BaseModel):
    """Which rows to take and how to label them; the dataset is built, recorded and summarised."""

    feature_names: list[str] | None = Field(None, description="Default: every feature of the feature set.")
    start_date: AwareIsoDatetime = Field(description="First window end included.")
    end_date: AwareIsoDatetime = Field(description="Window ends before this are included.")
    device_type: str | None = Field(None, description="Only heaters of this type.")
    horizon_days: Number = Field(14, gt=0, le=365, description="A failure this soon after a row labels it.")
    feature_set_version: str | None = Field(None, description="Default: the one set holding every named feature.")
    as_of: AwareIsoDatetime | None = Field(None, description="Outcomes known by then label the rows (default: now).")
    prediction_type: PredictionType = Field(
        PredictionType.COMPONENT_FAILURE,
        description="What labels the rows: failures within the horizon (component_failure), litres a sensor measured "
        "after a usage prediction (usage_pattern), or failures where known, every row kept (anomaly).",
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "feature_names": ["recovery_rate_lower_c_per_min", "standby_loss_c_per_h"],
                    "start_date": "2026-01-01T00:00:00Z",
                    "end_date": "2026-01-31T00:00:00Z",
                    "horizon_days": 14,
                }
            ]
        },
    )


@domain_response(_DATASET_EXAMPLE)
class DatasetOut(DatasetRecord):
    """A recorded dataset: ``content_hash`` is the sha256 of its rows, values and labels (equal hashes, equal data);
    ``query`` is what built it, with ``as_of``: building it again gives the same hash while the data is unchanged."""


DeviceId = Annotated[str, Path(description="The water heater's device id.", examples=["wh-0042"])]


@router.get(
    "/api/features/{device_id}", response_model=DeviceFeaturesOut, dependencies=_VIEWER, responses=error_responses(400)
)
def device_features(
    features: Features,
    device_id: DeviceId,
    names: Annotated[list[str] | None, Query(description="Only these features, in this order.")] = None,
    start: Annotated[AwareIsoDatetime | None, Query(description="First window end included.")] = None,
    end: Annotated[AwareIsoDatetime | None, Query(description="Window ends before this are included.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many rows, the newest.")] = 1000,
) -> DeviceFeaturesOut:
    """A water heater's feature vectors in a time range, oldest first."""
    found = features.get_device_features(device_id, names, (start, end))
    values = np.where(np.isnan(found.values), None, found.values.astype(object))[-limit:]
    rows = [
        FeatureRowOut(window_end=window_end, values=row)
        for window_end, row in zip(found.window_ends[-limit:], values.tolist(), strict=True)
    ]
    return DeviceFeaturesOut(device_id=device_id, feature_names=found.feature_names, rows=rows)


@router.get("/api/features/{device_id}/latest", response_model=LatestFeaturesOut, dependencies=_VIEWER)
def latest_features(features: Features, device_id: DeviceId) -> LatestFeaturesOut:
    """Each feature's newest value for a water heater, and how stale it is."""
    latest = features.latest_features(device_id)
    values = {name: None if found is None else LatestValueOut(**vars(found)) for name, found in latest.values.items()}
    return LatestFeaturesOut(device_id=device_id, as_of=latest.as_of, features=values)


@router.post(
    "/api/datasets",
    response_model=DatasetOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400),
)
def build_dataset(features: Features, key: Operator, request: DatasetRequest) -> DatasetRecord:
    """Build a point-in-time labelled training dataset, record it, and return its id, row count and hash; 400 for
    unknown features or feature set, or a start not before the end."""
    dataset = features.get_training_dataset(
        request.feature_names,
        request.start_date,
        request.end_date,
        device_type=request.device_type,
        horizon=timedelta(days=request.horizon_days),
        feature_set_version=request.feature_set_version,
        as_of=request.as_of,
        prediction_type=request.prediction_type,
        actor=key.actor,
    )
    return dataset.record


@router.get("/api/datasets/{dataset_id}", response_model=DatasetOut, dependencies=_VIEWER)
def dataset_record(
    features: Features,
    dataset_id: Annotated[
        str, Path(description="As returned when it was built.", examples=[_DATASET_EXAMPLE["dataset_id"]])
    ],
) -> DatasetRecord:
    """A recorded training dataset: the query that built it, its row count and content hash."""
    return features.get_dataset_record(dataset_id)
