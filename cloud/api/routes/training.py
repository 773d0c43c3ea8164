"""Training runs, schedules and evaluations over HTTP (``ModelTrainingPipeline``).

Triggering queues a run (202) that the training worker of ``iotsphere cloud serve`` executes; its status,
progress, log and error are read back here. An evaluation runs in the request: scoring a version takes seconds.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Operator, Pipeline, Viewer
from cloud.api.errors import error_responses
from cloud.api.params import MAX_STORED_INT, Flag, Integer, IsoDatetime, Number
from cloud.api.responses import domain_response
from cloud.pipeline.runs import RunStatus, TrainingRun
from cloud.pipeline.schedules import DEFAULT_WINDOW_DAYS, Schedule
from cloud.pipeline.training import DEFAULT_HOLDOUT_FRACTION, DEFAULT_MARGIN

router = APIRouter(prefix="/api/training", tags=["training"], responses=error_responses(401, 403))
_BAD = error_responses(400)
_MISSING = error_responses(404)

_RUN_EXAMPLE = {
    "run_id": "4f1c2a9b7d3e5f60",
    "model_name": "component_failure",
    "status": "succeeded",
    "requested_by": "key:2e9d01debaa0",
    "requested_at": "2026-02-01T02:00:00.000000Z",
    "start_date": "2025-11-01T00:00:00.000000Z",
    "end_date": "2026-02-01T00:00:00.000000Z",
    "options": {"margin": 0.01, "holdout_fraction": 0.25, "device_type": None, "release": True, "candidates": None},
    "schedule_id": None,
    "started_at": "2026-02-01T02:00:03.000000Z",
    "finished_at": "2026-02-01T02:01:10.000000Z",
    "stage": "done",
    "progress": 1.0,
    "dataset_id": "9b0e4c3f2a1d4e5f8a7b6c5d4e3f2a1b",
    "model_version": "5",
    "result": {"gate": {"passed": True, "reason": "mean_pr_auc 0.8312 beats version 4's 0.8100 by at least 1.0%"}},
    "error": None,
}


class OptionsIn(BaseModel):
    margin: Number = Field(
        DEFAULT_MARGIN, ge=0, lt=1, description="The challenger must beat the champion by this fraction."
    )
    holdout_fraction: Number = Field(
        DEFAULT_HOLDOUT_FRACTION, ge=0.05, le=0.5, description="Latest share of rows held out."
    )
    device_type: str | None = Field(None, description="Train for this device type only.")
    release: Flag = Field(True, description="Sign the new version into TUF when the API holds the passphrase.")
    candidates: list[str] | None = Field(None, description="Limit the estimators compared.")

    model_config = ConfigDict(extra="forbid")


class TriggerIn(BaseModel):
    model_name: str = Field(examples=["component_failure"])
    training_data_start_date: IsoDatetime
    training_data_end_date: IsoDatetime
    options: OptionsIn = Field(default_factory=OptionsIn)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "model_name": "component_failure",
                    "training_data_start_date": "2025-11-01T00:00:00Z",
                    "training_data_end_date": "2026-02-01T00:00:00Z",
                    "options": {"margin": 0.01},
                }
            ]
        },
    )


@domain_response(_RUN_EXAMPLE)
class RunOut(TrainingRun):
    """A training run as the pipeline keeps it: status, progress, the dataset and version it made, or its error."""


class LogLineOut(BaseModel):
    id: int
    at: str
    message: str


class RunDetailOut(RunOut):
    #: log lines, oldest first
    logs: list[LogLineOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    **_RUN_EXAMPLE,
                    "logs": [{"id": 1, "at": "2026-02-01T02:00:03.100000Z", "message": "building the dataset"}],
                }
            ]
        }
    )


class ScheduleIn(BaseModel):
    model_name: str = Field(examples=["component_failure"])
    schedule: str = Field(description="daily, weekly, monthly or a five-field cron expression (UTC).")
    window_days: Integer = Field(DEFAULT_WINDOW_DAYS, ge=1, le=3650, description="Days of data before each fire time.")
    options: OptionsIn = Field(default_factory=OptionsIn)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"model_name": "component_failure", "schedule": "0 3 * * 1", "window_days": 90}]
        },
    )


@domain_response(
    {
        "schedule_id": 1,
        "model_name": "component_failure",
        "schedule": "weekly",
        "cron": "@weekly",
        "window_days": 90,
        "options": {"margin": 0.01},
        "created_by": "key:2e9d01debaa0",
        "created_at": "2026-01-20T10:00:00.000000Z",
        "next_run_at": "2026-02-01T00:00:00.000000Z",
        "last_run_at": "2026-01-25T00:00:00.000000Z",
        "last_run_id": "4f1c2a9b7d3e5f60",
        "enabled": True,
    }
)
class ScheduleOut(Schedule):
    """A stored schedule: when it fires next and which run it queued last."""


class EvaluateIn(BaseModel):
    test_dataset_id: str | None = Field(
        None, description="A recorded dataset; default: a time-based holdout since the version's held-out period."
    )

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"test_dataset_id": None}]})


class EvaluationOut(BaseModel):
    id: int
    model_name: str
    model_version: str
    dataset_id: str
    score_name: str
    #: higher is better (errors are negated)
    score: float
    rows: int
    metrics: dict[str, Any]
    evaluated_at: str
    evaluated_by: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "model_name": "usage_pattern",
                    "model_version": "2",
                    "dataset_id": "9b0e4c3f2a1d4e5f8a7b6c5d4e3f2a1b",
                    "score_name": "neg_mae_litres",
                    "score": -21.4,
                    "rows": 48211,
                    "metrics": {"mae_litres": 21.4, "mape": 0.18},
                    "evaluated_at": "2026-02-01T09:00:00.000000Z",
                    "evaluated_by": "key:2e9d01debaa0",
                }
            ]
        }
    )


@router.post("/runs", status_code=status.HTTP_202_ACCEPTED, response_model=RunOut, responses=_BAD)
def trigger_run(pipeline: Pipeline, key: Operator, body: TriggerIn) -> TrainingRun:
    """Queue a training run; the training worker executes it. Poll ``GET /api/training/runs/{run_id}``."""
    return pipeline.trigger_model_training(
        body.model_name,
        body.training_data_start_date,
        body.training_data_end_date,
        options=body.options.model_dump(),
        actor=key.actor,
    )


@router.get("/runs", response_model=list[RunOut])
def list_runs(
    pipeline: Pipeline,
    key: Viewer,
    model_name: Annotated[str | None, Query(examples=["component_failure"])] = None,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[TrainingRun]:
    """Training runs, newest first."""
    return pipeline.runs.list(model_name, run_status, limit)


@router.get("/runs/{run_id}", response_model=RunDetailOut, responses=_MISSING)
def get_run(
    pipeline: Pipeline,
    key: Viewer,
    run_id: Annotated[str, Path(examples=["4f1c2a9b7d3e5f60"])],
    after_log_id: Annotated[
        int, Query(ge=0, le=MAX_STORED_INT, description="Only log lines after this id (for polling).")
    ] = 0,
) -> RunDetailOut:
    """A run with its status, progress, result or error, and its log."""
    run = pipeline.runs.get(run_id)
    logs = pipeline.runs.logs(run_id, after_log_id)
    return RunDetailOut(**RunOut.model_validate(run).model_dump(), logs=[LogLineOut(**line) for line in logs])


@router.post("/runs/{run_id}/cancel", response_model=RunOut, responses={**_MISSING, **error_responses(409)})
def cancel_run(
    pipeline: Pipeline,
    key: Operator,
    run_id: Annotated[str, Path(examples=["4f1c2a9b7d3e5f60"])],
) -> TrainingRun:
    """Cancel a queued run (a running one finishes or fails on its own: stopping it half-way would leave half)."""
    return pipeline.cancel_run(run_id, actor=key.actor)


@router.post("/schedules", status_code=status.HTTP_201_CREATED, response_model=ScheduleOut, responses=_BAD)
def create_schedule(pipeline: Pipeline, key: Operator, body: ScheduleIn) -> Schedule:
    """Train a model regularly; the schedule is stored and survives restarts of the server."""
    return pipeline.schedule_regular_training(
        body.model_name, body.schedule, body.window_days, body.options.model_dump(), actor=key.actor
    )


@router.get("/schedules", response_model=list[ScheduleOut])
def list_schedules(
    pipeline: Pipeline,
    key: Viewer,
    model_name: Annotated[str | None, Query(examples=["component_failure"])] = None,
) -> list[Schedule]:
    return pipeline.schedules.list(model_name)


@router.delete("/schedules/{schedule_id}", response_model=ScheduleOut, responses=_MISSING)
def delete_schedule(
    pipeline: Pipeline,
    key: Operator,
    schedule_id: Annotated[int, Path(ge=1, le=MAX_STORED_INT, examples=[1])],
) -> Schedule:
    """Stop a schedule; runs it already queued stay queued."""
    return pipeline.unschedule(schedule_id, actor=key.actor)


@router.post(
    "/evaluations/{model_name}/{model_version}",
    status_code=status.HTTP_201_CREATED,
    response_model=EvaluationOut,
    responses={**_BAD, **_MISSING},
)
def evaluate_version(
    pipeline: Pipeline,
    key: Operator,
    model_name: Annotated[str, Path(examples=["component_failure"])],
    model_version: Annotated[str, Path(examples=["4"])],
    body: EvaluateIn,
) -> EvaluationOut:
    """Score a registered version on a stored test dataset or on a time-based holdout, and keep the result."""
    result = pipeline.evaluate_model_performance(model_name, model_version, body.test_dataset_id, actor=key.actor)
    return EvaluationOut(**result)


@router.get("/evaluations/{model_name}", response_model=list[EvaluationOut])
def list_evaluations(
    pipeline: Pipeline,
    key: Viewer,
    model_name: Annotated[str, Path(examples=["component_failure"])],
    model_version: Annotated[str | None, Query(examples=["4"])] = None,
) -> list[EvaluationOut]:
    """Evaluations of a model's versions, newest first."""
    return [EvaluationOut(**row) for row in pipeline.evaluations(model_name, model_version)]
