"""The model registry as stored in the ``models`` table: names, versions, status, metrics and lineage."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict

from cloud.api.deps import Database, require_role
from cloud.api.errors import error_responses
from cloud.api.roles import Role
from cloud.data import models as stored_models
from cloud.data.connections import connection_of
from cloud.errors import NotFound
from shared.messages import PredictionType

router = APIRouter(
    prefix="/api/models",
    tags=["models"],
    dependencies=[Depends(require_role(Role.VIEWER))],
    responses=error_responses(401, 403, 404, 503),
)

_VERSION_EXAMPLE = {
    "model_name": "component_failure",
    "model_version": "3",
    "prediction_type": "component_failure",
    "status": "released",
    "created_at": "2026-01-30T12:00:00Z",
    "feature_set_version": "fs1",
    "device_types": ["tank-50gal-electric"],
    "metrics": {"roc_auc": 0.91, "brier": 0.06},
    "lineage": {"training_rows": 48000, "data_until": "2026-01-29T00:00:00Z", "parent_version": "2"},
    "release_target": "models/component_failure/3/release.json",
    "model_target": "models/component_failure/3/model.onnx",
    "model_sha256": "9f2c0e5d7a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5",
}


class ModelVersionOut(BaseModel):
    model_name: str
    model_version: str
    prediction_type: PredictionType
    status: str
    created_at: datetime
    feature_set_version: str | None
    device_types: list[str]
    metrics: dict[str, Any]
    lineage: dict[str, Any]
    #: TUF target path of the release file; None until the version is signed into TUF
    release_target: str | None
    model_target: str | None
    model_sha256: str | None

    model_config = ConfigDict(json_schema_extra={"examples": [_VERSION_EXAMPLE]})


class ModelOut(BaseModel):
    model_name: str
    prediction_type: PredictionType
    #: oldest first
    versions: list[ModelVersionOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "component_failure",
                    "prediction_type": "component_failure",
                    "versions": [_VERSION_EXAMPLE],
                }
            ]
        }
    )


def _version(row: Mapping[str, Any]) -> ModelVersionOut:
    return ModelVersionOut(
        **row,
        device_types=json.loads(row["device_types_json"] or "[]"),
        metrics=json.loads(row["metrics_json"] or "{}"),
        lineage=json.loads(row["lineage_json"] or "{}"),
    )


def _group(versions: list[ModelVersionOut]) -> list[ModelOut]:
    names = dict.fromkeys(v.model_name for v in versions)
    return [
        ModelOut(
            model_name=name,
            prediction_type=next(v.prediction_type for v in versions if v.model_name == name),
            versions=[v for v in versions if v.model_name == name],
        )
        for name in sorted(names)
    ]


ModelName = Annotated[str, Path(description="Registered model name.", examples=["component_failure"])]


@router.get("", response_model=list[ModelOut])
def list_models(db: Database) -> list[ModelOut]:
    """Every registered model with all its versions."""
    return _group([_version(row) for row in stored_models.versions(connection_of(db))])


@router.get("/{model_name}", response_model=ModelOut)
def get_model(db: Database, model_name: ModelName) -> ModelOut:
    """One model with all its versions, oldest first."""
    found = _group([_version(row) for row in stored_models.versions(connection_of(db), model_name)])
    if not found:
        raise NotFound(f"unknown model {model_name!r}")
    return found[0]


@router.get("/{model_name}/{version}", response_model=ModelVersionOut)
def get_model_version(
    db: Database,
    model_name: ModelName,
    version: Annotated[str, Path(description="Model version.", examples=["3"])],
) -> ModelVersionOut:
    """One version of a model: status, metrics, lineage and where its signed release lives."""
    connection = connection_of(db)
    row = stored_models.find_version(connection, model_name, version)
    if row is not None:
        return _version(row)
    if not stored_models.has_model(connection, model_name):
        raise NotFound(f"unknown model {model_name!r}")
    raise NotFound(f"model {model_name!r} has no version {version!r}")
