"""Model monitoring over HTTP (``ModelPerformanceMonitor``): tracked metric series, computed performance, reports.

Operators track metric points (a job or a person: gateways report through MQTT, not here); viewers read the
series, the performance computed from outcomes, and the report as JSON or one self-contained HTML page.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Database, Monitor, require_role
from cloud.api.errors import error_responses
from cloud.api.keys import ApiKey
from cloud.api.params import IsoDatetime, Number, UtcIsoDatetime
from cloud.api.roles import Role
from cloud.errors import Invalid
from cloud.monitoring.performance import GROUP_DIMENSIONS, generate_performance_report, resolve_period
from cloud.monitoring.report import render_html
from shared.messages import Arm, PredictionType

router = APIRouter(prefix="/api/monitoring", tags=["monitoring"], responses=error_responses(400, 401, 403, 503))

Viewer = Depends(require_role(Role.VIEWER))
Operator = Depends(require_role(Role.OPERATOR))
TimePeriod = Annotated[
    str,
    Query(
        description="last_day, last_week, last_month or YYYY-MM-DD..YYYY-MM-DD (both days included).",
        examples=["last_week"],
    ),
]

_POINT_EXAMPLE = {
    "model_name": "component_failure",
    "prediction_type": "component_failure",
    "model_version": "3",
    "device_type": "tank-50gal-electric",
    "arm": "champion",
    "window": "",
    "metric": "alert_rate",
    "value": 0.042,
    "at": "2026-02-01T00:00:00.000000Z",
    "source": "tracked",
}
_CLASSIFICATION_EXAMPLE = {
    "n": 1840,
    "positives": 37,
    "alerts": 52,
    "precision": 0.596,
    "recall": 0.838,
    "f1": 0.697,
    "roc_auc": 0.941,
    "brier": 0.0172,
    "calibration": [{"bin_low": 0.0, "bin_high": 0.1, "expected": 0.012, "observed": 0.009, "n": 1712}],
}
_CELL_EXAMPLE = {
    "model_version": "3",
    "device_type": "tank-50gal-electric",
    "arm": "champion",
    "window_start": "2026-02-01T00:00:00.000000Z",
    "window_end": "2026-02-02T00:00:00.000000Z",
    "predictions": 2400,
    "latency_ms": {"n": 2400, "mean": 0.9, "p50": 0.7, "p95": 2.1, "p99": 4.8},
    "classification": {"any": _CLASSIFICATION_EXAMPLE},
    "ratings": {"n": 12, "mean": 4.1, "distribution": {"1": 0, "2": 1, "3": 1, "4": 5, "5": 5}, "share_low": 0.083},
}
_ERRORS_EXAMPLE = {
    "model_version": "3",
    "window_start": "2026-02-01T00:00:00.000000Z",
    "window_end": "2026-02-02T00:00:00.000000Z",
    "events": {"activate": 12, "commit": 11, "reject": 1},
}


class PointsIn(BaseModel):
    prediction_type: PredictionType
    metrics: dict[str, Number] = Field(min_length=1)
    timestamp: UtcIsoDatetime
    model_name: str | None = Field(None, description="Default: the prediction type (its registered model name).")
    model_version: str | None = None
    device_type: str | None = None
    arm: Arm | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "prediction_type": "component_failure",
                    "metrics": {"alert_rate": 0.042, "technician_confirmed": 0.61},
                    "timestamp": "2026-02-01T00:00:00Z",
                    "model_version": "3",
                    "arm": "champion",
                }
            ]
        },
    )


class StoredOut(BaseModel):
    stored: int = Field(description="Points written; a point tracked before is replaced.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"stored": 2}]})


class PointOut(BaseModel):
    model_name: str
    prediction_type: str
    model_version: str = Field(description="'' when the point is not split by version; likewise below.")
    device_type: str
    arm: str
    window: str
    metric: str
    value: float
    at: str
    source: Literal["tracked", "computed"]

    model_config = ConfigDict(json_schema_extra={"examples": [_POINT_EXAMPLE]})


class PerformanceOut(BaseModel):
    model_name: str
    prediction_type: str
    start: str
    end: str
    window: str
    group_by: list[str]
    horizon_days: float
    cells: list[dict[str, Any]] = Field(description="One per grouped dimensions × window with predictions.")
    errors: list[dict[str, Any]] = Field(description="Gateway events of the model per version and window, by kind.")
    dead_letters: int

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "component_failure",
                    "prediction_type": "component_failure",
                    "start": "2026-02-01T00:00:00.000000Z",
                    "end": "2026-02-08T00:00:00.000000Z",
                    "window": "1d",
                    "group_by": ["model_version", "device_type", "arm"],
                    "horizon_days": 14.0,
                    "cells": [_CELL_EXAMPLE],
                    "errors": [_ERRORS_EXAMPLE],
                    "dead_letters": 0,
                }
            ]
        }
    )


class ReportOut(BaseModel):
    generated_at: str
    time_period: str
    start: str
    end: str
    window: str
    horizon_days: float
    dead_letters: int
    models: list[dict[str, Any]]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "generated_at": "2026-02-08T06:00:00.000000Z",
                    "time_period": "last_week",
                    "start": "2026-02-01T06:00:00.000000Z",
                    "end": "2026-02-08T06:00:00.000000Z",
                    "window": "1d",
                    "horizon_days": 14.0,
                    "dead_letters": 0,
                    "models": [
                        {
                            "model_name": "component_failure",
                            "prediction_type": "component_failure",
                            "summary": [{**_CELL_EXAMPLE, "device_type": None}],
                            "series": [{**_CELL_EXAMPLE, "device_type": None, "arm": None}],
                            "errors": [_ERRORS_EXAMPLE],
                            "baseline": {"3": {"score_name": "mean_pr_auc", "score": 0.81, "mean_roc_auc": 0.94}},
                            "tracked": [_POINT_EXAMPLE],
                        }
                    ],
                }
            ]
        }
    )


@router.post("/metrics", status_code=201, response_model=StoredOut)
def track_metrics(monitor: Monitor, key: Annotated[ApiKey, Operator], body: PointsIn) -> StoredOut:
    """Store metric points at ``timestamp``: one time series per metric and model, version, device type, arm."""
    stored = monitor.track_prediction_metrics(
        body.prediction_type,
        body.metrics,
        body.timestamp,
        body.model_version,
        body.device_type,
        body.arm,
        model_name=body.model_name,
        actor=key.actor,
    )
    return StoredOut(stored=stored)


@router.get("/metrics", response_model=list[PointOut], dependencies=[Viewer])
def list_metrics(
    monitor: Monitor,
    model_name: Annotated[str | None, Query(examples=["component_failure"])] = None,
    prediction_type: Annotated[PredictionType | None, Query()] = None,
    metric: Annotated[str | None, Query(examples=["latency_ms.p95"])] = None,
    model_version: Annotated[str | None, Query(description="'' for points not split by version.")] = None,
    device_type: Annotated[str | None, Query()] = None,
    arm: Annotated[str | None, Query()] = None,
    source: Annotated[Literal["tracked", "computed"] | None, Query()] = None,
    start: Annotated[IsoDatetime | None, Query(description="From this time (UTC), inclusive.")] = None,
    end: Annotated[IsoDatetime | None, Query(description="Until this time (UTC), exclusive.")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[PointOut]:
    """Stored metric points, oldest first; each filter narrows the series."""
    for moment in (start, end):
        if moment is not None and moment.tzinfo is None:
            raise Invalid("start and end need a time zone, e.g. Z")
    points = monitor.metric_points(
        model_name,
        prediction_type.value if prediction_type else None,
        metric,
        start,
        end,
        model_version,
        device_type,
        arm,
        source,
        limit,
    )
    return [PointOut(**point) for point in points]


@router.get(
    "/performance/{model_name}",
    response_model=PerformanceOut,
    dependencies=[Viewer],
    responses=error_responses(404),
)
def performance(
    monitor: Monitor,
    model_name: Annotated[str, Path(description="A registered model name.", examples=["component_failure"])],
    time_period: TimePeriod = "last_week",
    start: Annotated[IsoDatetime | None, Query(description="With end, instead of time_period (UTC).")] = None,
    end: Annotated[IsoDatetime | None, Query(description="Exclusive.")] = None,
    window: Annotated[str | None, Query(description="30m, 12h, 1d, 2w or all.", examples=["1d"])] = None,
    group_by: Annotated[list[str] | None, Query(description=f"Any of {', '.join(GROUP_DIMENSIONS)}.")] = None,
) -> PerformanceOut:
    """Metrics computed from outcomes, ratings, latency and gateway events per version × device type × arm × window.

    ``component_failure``: precision, recall, F1 at each version's alert thresholds, ROC AUC, Brier score and
    calibration per component and for any failure; ``usage_pattern``: MAE and MAPE against sensor outcomes.
    """
    period_start, period_end, period_window = resolve_period(time_period)
    if (start is None) != (end is None):
        raise Invalid("give start and end together, or neither (then time_period applies)")
    if start and end:
        period_start, period_end = start, end
    result = monitor.compute_metrics(
        model_name, period_start, period_end, window or period_window, group_by or GROUP_DIMENSIONS
    )
    return PerformanceOut(**result)


@router.get(
    "/report",
    response_model=ReportOut,
    dependencies=[Viewer],
    responses={**error_responses(404), 200: {"content": {"text/html": {}}, "description": "JSON, or HTML"}},
)
def report(
    db: Database,
    model_name: Annotated[str | None, Query(description="Default: every model with predictions.")] = None,
    time_period: TimePeriod = "last_month",
    format: Annotated[Literal["json", "html"], Query(description="html: one self-contained page.")] = "json",
) -> ReportOut | HTMLResponse:
    """The performance report over a period: JSON, or an HTML page with inline charts that needs no network."""
    found = generate_performance_report(db, model_name, time_period)
    if format == "html":
        return HTMLResponse(render_html(found))
    return ReportOut(**found)
