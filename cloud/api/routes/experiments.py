"""A/B tests over HTTP (``ExperimentService``): operators create, start, stop and conclude; viewers watch.

Starting, stopping and concluding sign director documents (``cloud.api.deps.SigningExperiments``: 503 without the
key passphrase), as promotions do; creating, listing and watching need no key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Experiments, Operator, SigningExperiments, require_role
from cloud.api.errors import error_responses
from cloud.api.params import MAX_SAFE_INT, MAX_STORED_INT, Flag, Integer, Number
from cloud.api.roles import Role
from cloud.api.routes.registry import DirectedOut, HistoryEntryOut, NotDirectedOut
from cloud.experiments.guardrails import DEFAULT_GUARDRAILS
from cloud.experiments.service import Outcome
from cloud.experiments.store import Status

router = APIRouter(prefix="/api/experiments", tags=["experiments"], responses=error_responses(401, 403))
_CHANGES = error_responses(400, 404, 409, 503)

ExperimentId = Annotated[str, Path(description="Experiment id.", examples=["exp-3f9a1c2b7d4e"])]

_EXPERIMENT_EXAMPLE = {
    "experiment_id": "exp-3f9a1c2b7d4e",
    "model_name": "component_failure",
    "prediction_type": "component_failure",
    "champion_version": "4",
    "challenger_version": "5",
    "mode": "split",
    "challenger_percent": 20,
    "metric": "error_rate",
    "min_detectable_effect": 0.05,
    "alpha": 0.05,
    "power": 0.8,
    "planned_per_arm": 1750,
    "guardrails": DEFAULT_GUARDRAILS,
    "gateway_ids": ["gw-001", "gw-002"],
    "status": "running",
    "created_at": "2026-02-01T09:00:00.000000Z",
    "created_by": "key:2e9d01debaa0",
    "started_at": "2026-02-01T09:05:00.000000Z",
    "started_by": "key:2e9d01debaa0",
    "stopped_at": None,
    "stopped_by": None,
    "concluded_at": None,
    "concluded_by": None,
    "decision": None,
    "reason": None,
}


class ExperimentOut(BaseModel):
    experiment_id: str
    model_name: str
    prediction_type: str
    champion_version: str
    challenger_version: str
    mode: Literal["split", "shadow"]
    #: share of heaters on the challenger in split mode (0 in shadow mode: every heater runs both)
    challenger_percent: int
    #: lower is better: ``error_rate`` (component_failure) or ``absolute_error`` in litres (usage_pattern)
    metric: str
    min_detectable_effect: float
    alpha: float
    power: float
    planned_per_arm: int
    guardrails: dict[str, float]
    #: the gateways directed; None for a draft that will take every gateway running the model
    gateway_ids: list[str] | None
    status: Status
    created_at: datetime
    created_by: str
    started_at: datetime | None
    started_by: str | None
    stopped_at: datetime | None
    stopped_by: str | None
    concluded_at: datetime | None
    concluded_by: str | None
    #: challenger (promoted), champion (kept), or inconclusive (ended early by an operator; champion kept)
    decision: str | None
    reason: str | None

    model_config = ConfigDict(json_schema_extra={"examples": [_EXPERIMENT_EXAMPLE]})


class DecisionOut(BaseModel):
    id: int
    at: datetime
    actor: str
    #: create, start, stop, conclude or conclude_refused
    action: str
    decision: str | None
    reason: str | None
    details: dict[str, Any]


class ArmOut(BaseModel):
    version: str
    #: predictions with a scored outcome
    n: int
    mean: float | None
    #: fixed-sample 1 - alpha interval of the mean (Wilson for a rate, Student t otherwise)
    interval: tuple[float, float] | None
    predictions: int
    #: model runs on gateways (each a batch of predictions sharing one latency)
    batches: int
    #: p95 over batches
    latency_p95_ms: float | None
    rejections: int
    rollbacks: int
    #: gateways that reported this version failing in service (health events)
    failures: int


class SequentialOut(BaseModel):
    #: challenger minus champion; negative means the challenger errs less
    difference: float
    #: always-valid confidence sequence for the difference
    low: float
    high: float
    log_likelihood_ratio: float
    #: always-valid p-value: looking again and again does not inflate it
    p_value: float
    significant: bool


class GuardrailsOut(BaseModel):
    thresholds: dict[str, float]
    breaches: list[str]


class StatusOut(BaseModel):
    experiment: ExperimentOut
    #: None until the experiment starts
    arms: dict[str, ArmOut] | None
    #: None until each arm has the minimum sample
    sequential: SequentialOut | None
    guardrails: GuardrailsOut | None
    #: continue, challenger_wins, champion_wins, no_difference or guardrail_breached
    recommendation: str | None
    decisions: list[DecisionOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "experiment": _EXPERIMENT_EXAMPLE,
                    "arms": {
                        "champion": {
                            "version": "4",
                            "n": 1210,
                            "mean": 0.21,
                            "interval": [0.188, 0.234],
                            "predictions": 40210,
                            "batches": 4021,
                            "latency_p95_ms": 1.9,
                            "rejections": 0,
                            "rollbacks": 0,
                            "failures": 0,
                        },
                        "challenger": {
                            "version": "5",
                            "n": 1188,
                            "mean": 0.15,
                            "interval": [0.131, 0.172],
                            "predictions": 39870,
                            "batches": 3987,
                            "latency_p95_ms": 2.1,
                            "rejections": 0,
                            "rollbacks": 0,
                            "failures": 0,
                        },
                    },
                    "sequential": {
                        "difference": -0.06,
                        "low": -0.101,
                        "high": -0.019,
                        "log_likelihood_ratio": 4.2,
                        "p_value": 0.015,
                        "significant": True,
                    },
                    "guardrails": {"thresholds": DEFAULT_GUARDRAILS, "breaches": []},
                    "recommendation": "challenger_wins",
                    "decisions": [
                        {
                            "id": 1,
                            "at": "2026-02-01T09:00:00.000000Z",
                            "actor": "key:2e9d01debaa0",
                            "action": "create",
                            "decision": None,
                            "reason": "retrained on the new anode type",
                            "details": {},
                        }
                    ],
                }
            ]
        }
    )


class ActionOut(BaseModel):
    experiment: ExperimentOut
    #: the signed director documents issued, one per gateway
    directed: list[DirectedOut]
    #: gateways that could not be directed (recorded; the director publisher retries them)
    not_directed: list[NotDirectedOut] = []
    #: set when the broker could not be reached: the documents are stored and sent later
    pending: str | None = None
    #: the registry's history entry when concluding promoted the challenger
    promotion: HistoryEntryOut | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"experiment": _EXPERIMENT_EXAMPLE, "directed": [{"gateway_id": "gw-001", "sequence": 13}]}]
        }
    )


class CreateIn(BaseModel):
    model_name: str = Field(examples=["component_failure"])
    challenger_version: str = Field(examples=["5"])
    champion_version: str | None = Field(None, description="Default: the production version.")
    mode: Literal["split", "shadow"] = "split"
    challenger_percent: Integer = Field(50, ge=0, le=100, description="Share of heaters on the challenger (split).")
    min_detectable_effect: Number | None = Field(
        None,
        gt=0,
        le=MAX_SAFE_INT,
        description="Smallest improvement worth finding, in the metric's units; default per metric.",
    )
    alpha: Number = Field(0.05, gt=0, lt=0.5, description="False-positive rate however often anyone looks.")
    power: Number = Field(0.8, gt=0.5, lt=1)
    planned_per_arm: Integer | None = Field(
        None, ge=2, le=MAX_STORED_INT, description="Override the power calculation."
    )
    guardrails: dict[str, Number] | None = Field(None, description=f"Override defaults: {DEFAULT_GUARDRAILS}.")
    gateway_ids: list[str] | None = Field(None, description="Default: every gateway running the model.")
    reason: str = Field("", description="Why; kept in the decision log.")

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "component_failure",
                    "challenger_version": "5",
                    "mode": "split",
                    "challenger_percent": 20,
                    "reason": "retrained on the new anode type",
                }
            ]
        }
    )


class ReasonIn(BaseModel):
    reason: str = Field("", description="Why; kept in the decision log.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "challenger passed evaluation"}]})


class StopIn(BaseModel):
    reason: str = Field(min_length=1, description="Why; kept in the decision log.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "gateways report high latency"}]})


class ConcludeIn(BaseModel):
    reason: str = Field("", description="Why; required with force.")
    force: Flag = Field(False, description="End before the rule has an answer (keeps the champion).")

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "", "force": False}]})


def _action(outcome: Outcome) -> ActionOut:
    return ActionOut(
        experiment=ExperimentOut(**outcome.experiment),
        directed=[
            DirectedOut(gateway_id=d.signed.gateway_id, sequence=d.signed.sequence) for d in outcome.directed.documents
        ],
        not_directed=outcome.directed.failures,
        pending=outcome.directed.pending,
        promotion=HistoryEntryOut.of(outcome.promotion) if outcome.promotion else None,
    )


@router.post("", response_model=ExperimentOut, status_code=status.HTTP_201_CREATED, responses=_CHANGES)
def create(experiments: Experiments, key: Operator, body: CreateIn) -> ExperimentOut:
    """Plan a draft experiment: both versions released, the champion in production, sample size from power."""
    fields = body.model_dump(exclude={"model_name", "challenger_version", "planned_per_arm"})
    row = experiments.create(
        body.model_name, body.challenger_version, actor=key.actor, planned=body.planned_per_arm, **fields
    )
    return ExperimentOut(**row)


@router.get("", response_model=list[ExperimentOut], dependencies=[Depends(require_role(Role.VIEWER))])
def list_experiments(
    experiments: Experiments,
    status_filter: Annotated[Status | None, Query(alias="status", description="Only this status.")] = None,
    model_name: Annotated[str | None, Query(description="Only this model.")] = None,
) -> list[ExperimentOut]:
    """Experiments, newest first."""
    rows = experiments.store.list(status_filter, model_name)
    return [ExperimentOut(**row) for row in rows]


@router.get(
    "/{experiment_id}",
    response_model=StatusOut,
    dependencies=[Depends(require_role(Role.VIEWER))],
    responses=error_responses(404),
)
def get_experiment(experiments: Experiments, experiment_id: ExperimentId) -> StatusOut:
    """One look: per-arm metric with intervals, the always-valid sequential test, guardrails, the decision log."""
    look = experiments.status(experiment_id)
    return StatusOut(**{**look, "experiment": ExperimentOut(**look["experiment"])})


@router.post("/{experiment_id}/start", response_model=ActionOut, responses=_CHANGES)
def start(
    experiments: SigningExperiments, key: Operator, experiment_id: ExperimentId, body: ReasonIn | None = None
) -> ActionOut:
    """Sign and publish director documents naming the challenger and the experiment to the gateways in scope."""
    return _action(experiments.start(experiment_id, actor=key.actor, reason=body.reason if body else ""))


@router.post("/{experiment_id}/stop", response_model=ActionOut, responses=_CHANGES)
def stop(experiments: SigningExperiments, key: Operator, experiment_id: ExperimentId, body: StopIn) -> ActionOut:
    """Take the challenger off the gateways (new documents without it); the data stays for concluding."""
    return _action(experiments.stop(experiment_id, actor=key.actor, reason=body.reason))


@router.post("/{experiment_id}/conclude", response_model=ActionOut, responses=_CHANGES)
def conclude(
    experiments: SigningExperiments, key: Operator, experiment_id: ExperimentId, body: ConcludeIn
) -> ActionOut:
    """Promote a winning challenger through the registry, or take it off; 409 while the rule has no answer."""
    return _action(experiments.conclude(experiment_id, actor=key.actor, reason=body.reason, force=body.force))
