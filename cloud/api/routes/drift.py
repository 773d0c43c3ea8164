"""Drift checks of a model version over HTTP (``cloud.monitoring.drift``).

A GET runs the check in the request and stores nothing, so a viewer can look as often as they like; an
operator's POST runs it and records it in ``drift_checks``, the history that retraining triggers and the
dashboard read back from ``/history``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Database, Operator, Viewer
from cloud.api.errors import error_responses
from cloud.api.params import Integer
from cloud.monitoring.drift import DEFAULT_DAYS, detect_model_drift, drift_history, record_check

router = APIRouter(prefix="/api/monitoring/drift", tags=["monitoring"], responses=error_responses(401, 403))
_FAILURES = error_responses(400, 404)

_FEATURE_EXAMPLE = {
    "kind": "continuous",
    "rows": 1680,
    "method": "ks",
    "ks_statistic": 0.41,
    "ks_error_bound": 0.0025,
    "wasserstein": 1.12,
    "p_value": 1.2e-40,
    "q_value": 3.8e-39,
    "status": "drift",
}
_RESULT_EXAMPLE = {
    "model_name": "component_failure",
    "model_version": "3",
    "device_type": None,
    "window": {"start": "2026-01-25T00:00:00.000000Z", "end": "2026-02-01T00:00:00.000000Z"},
    "checked_at": "2026-02-01T00:00:01.000000Z",
    "status": "drift",
    "feature_drift": {
        "status": "drift",
        "drifted": ["inlet_temperature_c"],
        "segments": {
            "all": {
                "reference": "all",
                "reference_rows": 48000,
                "status": "drift",
                "rows": 1680,
                "drifted": ["inlet_temperature_c"],
                "features": {"inlet_temperature_c": _FEATURE_EXAMPLE},
            }
        },
    },
    "data_quality": {"status": "ok", "findings": []},
    "performance": {"status": "insufficient_data", "test": "roc_auc_hanley_mcneil", "outcomes": 12},
    "config": {"alpha": 0.05, "psi_threshold": 0.2, "ks_max_rows": 10000, "min_rows": 200},
}


class DriftResultOut(BaseModel):
    """A check's result: see ``cloud.monitoring.drift`` for every field and threshold."""

    model_name: str
    model_version: str
    device_type: str | None
    window: dict[str, str]
    checked_at: str
    status: str = Field(description="drift, ok or insufficient_data")
    feature_drift: dict[str, Any]
    data_quality: dict[str, Any]
    performance: dict[str, Any]
    config: dict[str, Any]

    model_config = ConfigDict(json_schema_extra={"examples": [_RESULT_EXAMPLE]})


class RecordedCheckOut(DriftResultOut):
    check_id: int

    model_config = ConfigDict(json_schema_extra={"examples": [{**_RESULT_EXAMPLE, "check_id": 7}]})


class CheckIn(BaseModel):
    version: str | None = Field(None, description="Version to check (default: production for the device type).")
    days: Integer = Field(DEFAULT_DAYS, ge=1, le=365, description="The window: this many days up to now.")
    device_type: str | None = Field(None, description="Check only this device type's heaters and predictions.")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"days": 7, "device_type": None}]})


class HistoryEntryOut(BaseModel):
    id: int
    model_name: str
    model_version: str
    device_type: str | None
    window_start: str
    window_end: str
    checked_at: str
    checked_by: str | None
    status: str
    drifted_features: int
    quality_findings: int
    performance_status: str | None
    drifted: list[str]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "model_name": "component_failure",
                    "model_version": "3",
                    "device_type": None,
                    "window_start": "2026-01-25T00:00:00.000000Z",
                    "window_end": "2026-02-01T00:00:00.000000Z",
                    "checked_at": "2026-02-01T00:00:01.000000Z",
                    "checked_by": "key:2e9d01debaa0",
                    "status": "drift",
                    "drifted_features": 1,
                    "quality_findings": 0,
                    "performance_status": "insufficient_data",
                    "drifted": ["inlet_temperature_c"],
                }
            ]
        }
    )


_MODEL = Annotated[str, Path(examples=["component_failure"])]


@router.get("/{model_name}", response_model=DriftResultOut, responses=_FAILURES)
def drift_now(
    db: Database,
    key: Viewer,
    model_name: _MODEL,
    version: Annotated[str | None, Query(examples=["3"])] = None,
    days: Annotated[int, Query(ge=1, le=365)] = DEFAULT_DAYS,
    device_type: Annotated[str | None, Query(examples=["nwp500-50"])] = None,
) -> dict:
    """Feature drift, data quality and performance of a version over the last ``days``; nothing is recorded."""
    return detect_model_drift(db, model_name, days=days, device_type=device_type, version=version)


@router.post(
    "/{model_name}/check", status_code=status.HTTP_201_CREATED, response_model=RecordedCheckOut, responses=_FAILURES
)
def drift_check(
    db: Database,
    key: Operator,
    model_name: _MODEL,
    body: CheckIn | None = None,
) -> dict:
    """Run the check and record it in the drift history."""
    body = body or CheckIn()
    result = detect_model_drift(db, model_name, days=body.days, device_type=body.device_type, version=body.version)
    return {**result, "check_id": record_check(db, result, actor=key.actor)}


@router.get("/{model_name}/history", response_model=list[HistoryEntryOut])
def history(
    db: Database,
    key: Viewer,
    model_name: _MODEL,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[dict]:
    """Recorded checks of a model, newest first."""
    return drift_history(db, model_name, limit)
