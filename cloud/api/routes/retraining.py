"""Automated retraining over HTTP: a model's policy, a check on demand, and every decision with its reason."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Operator, Retraining, Viewer
from cloud.api.errors import error_responses
from cloud.api.params import MAX_DURATION_S, MAX_SAFE_INT, Flag, Integer, Number
from cloud.api.responses import domain_response
from cloud.retraining.policy import AfterGate, ExperimentMode, RetrainingPolicy
from shared.messages import PredictionType

router = APIRouter(prefix="/api/retraining", tags=["retraining"], responses=error_responses(401, 403))

ModelName = Annotated[
    PredictionType, Path(description="The model (a prediction type).", examples=["component_failure"])
]

_POLICY_EXAMPLE = asdict(RetrainingPolicy(enabled=True))
_DECISION_EXAMPLE = {
    "id": 12,
    "at": "2026-02-03T04:00:00.000000Z",
    "model_name": "component_failure",
    "trigger": "check",
    "decision": "queued",
    "reason": "feature drift in 2 features (inlet_temp_c, energy_per_litre_heated_wh_per_k)",
    "evidence": {"triggers": [{"kind": "feature_drift", "fired": True}]},
    "run_id": "4f1c2a9b7d3e5f60",
    "model_version": None,
    "experiment_id": None,
    "rollout_id": None,
    "open": True,
}


@domain_response(_POLICY_EXAMPLE)
class RetrainingPolicyOut(RetrainingPolicy):
    """When the worker looks, what triggers a run, the guards, and what follows a run that passes the gate."""


class PolicyOut(BaseModel):
    model_name: str
    policy: RetrainingPolicyOut

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"model_name": "component_failure", "policy": _POLICY_EXAMPLE}]}
    )


def _days() -> Any:
    return Field(None, ge=1, le=MAX_DURATION_S // 86400)


class PolicyChange(BaseModel):
    """Only the settings to change, each bounded so that no stored policy overflows a time span later."""

    enabled: Flag = None
    check_every_minutes: Integer = Field(None, ge=1, le=MAX_DURATION_S // 60)
    window_days: Integer = _days()
    baseline_days: Integer = _days()
    feature_drift: Flag = None
    performance_drift: Flag = None
    feedback: Flag = None
    min_feedback: Integer = Field(None, ge=1, le=MAX_SAFE_INT)
    min_rise: Number = Field(None, ge=0, lt=1)
    alpha: Number = Field(None, gt=0, lt=0.5)
    min_new_labels: Integer = Field(None, ge=0, le=MAX_SAFE_INT)
    cooldown_hours: Number = Field(None, ge=0, le=MAX_DURATION_S / 3600)
    training_days: Integer = _days()
    margin: Number = Field(None, ge=0, lt=1)
    after_gate: AfterGate = None
    experiment_mode: ExperimentMode = None
    experiment_percent: Integer = Field(None, ge=1, le=99)

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"enabled": True, "cooldown_hours": 12, "min_new_labels": 100}]}
    )


class DecisionOut(BaseModel):
    id: int
    at: str
    model_name: str
    trigger: str
    decision: str
    reason: str
    evidence: dict[str, Any]
    run_id: str | None
    model_version: str | None
    experiment_id: str | None
    rollout_id: int | None
    #: still waiting on a run or an experiment
    open: bool

    model_config = ConfigDict(json_schema_extra={"examples": [_DECISION_EXAMPLE]})


@router.get("/policies/{model_name}", response_model=PolicyOut)
def get_policy(service: Retraining, key: Viewer, model_name: ModelName) -> PolicyOut:
    """The model's retraining policy (the defaults, disabled, until an operator sets one)."""
    return PolicyOut(model_name=model_name.value, policy=service.policies.get(model_name.value))


@router.patch("/policies/{model_name}", response_model=PolicyOut, responses=error_responses(400))
def change_policy(
    service: Retraining,
    key: Operator,
    model_name: ModelName,
    body: PolicyChange,
) -> PolicyOut:
    """Change settings of the model's policy (e.g. enable it); the others keep their values."""
    policy = service.set_policy(model_name.value, body.model_dump(exclude_unset=True), actor=key.actor)
    return PolicyOut(model_name=model_name.value, policy=policy)


@router.post("/{model_name}/check", response_model=DecisionOut, status_code=status.HTTP_201_CREATED)
def check(service: Retraining, key: Operator, model_name: ModelName) -> DecisionOut:
    """Look at drift and feedback now; queue a training run if a trigger fires and the guards allow it."""
    return DecisionOut(**service.check(model_name.value, actor=key.actor))


@router.get("/decisions", response_model=list[DecisionOut])
def decisions(
    service: Retraining,
    key: Viewer,
    model_name: Annotated[PredictionType | None, Query(examples=["component_failure"])] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DecisionOut]:
    """Every trigger, decision and reason, newest first."""
    return [DecisionOut(**d) for d in service.decisions(model_name.value if model_name else None, limit)]
