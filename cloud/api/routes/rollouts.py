"""Staged rollouts (``cloud.rollouts``): start one, advance it, halt, resume, roll back or cancel it; read them.

Starting, advancing and rolling back sign director documents (``cloud.api.deps.SigningRollouts``: 503 without
the key passphrase). ``advance`` takes the decision the stage in flight calls for
now, so operators and tests need not wait for the rollout worker's timer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Database, Operator, Rollouts, SigningRollouts, require_role
from cloud.api.errors import error_responses
from cloud.api.params import MAX_DURATION_S, MAX_STORED_INT, Number
from cloud.api.roles import Role
from cloud.rollouts import store
from cloud.rollouts.engine import StagedRollouts
from cloud.rollouts.plan import DEFAULT_CANARY_FAILURE_SHARE, DEFAULT_FAILURE_SHARE, RolloutPlan
from cloud.rollouts.store import RolloutStatus
from cloud.rollouts.view import rollout_view

router = APIRouter(prefix="/api/rollouts", tags=["rollouts"], responses=error_responses(401, 403, 404, 503))

_REFUSED = error_responses(409)
RolloutId = Annotated[int, Path(ge=1, le=MAX_STORED_INT, description="Rollout id.", examples=[3])]

_ROLLOUT_EXAMPLE = {
    "rollout_id": 3,
    "model_name": "component_failure",
    "version": "5",
    "device_type": None,
    "status": "running",
    "plan": {
        "percentages": [10, 100],
        "canary_max_failure_share": 0.0,
        "max_failure_share": 0.05,
        "stage_deadline_s": 1800.0,
    },
    "created_by": "key:2e9d01debaa0",
    "created_at": "2026-02-01T09:00:00.000000Z",
    "reason": "beats version 4 on the January holdout",
    "updated_at": "2026-02-01T09:00:00.000000Z",
    "finished_at": None,
    "outcome": None,
    "progress": "1 committed, 1 probation; failing share 0% (threshold 0%) of 2 gateway(s)",
    "stages": [
        {
            "index": 0,
            "percent": 10.0,
            "max_failure_share": 0.0,
            "deadline_s": 1800.0,
            "status": "running",
            "started_at": "2026-02-01T09:00:00.000000Z",
            "deadline_at": "2026-02-01T09:30:00.000000Z",
            "finished_at": None,
            "gateways": [
                {
                    "gateway_id": "gw-007",
                    "previous_version": "4",
                    "directed_sequence": 12,
                    "rollback_sequence": None,
                    "state": "committed",
                    "reason": None,
                },
                {
                    "gateway_id": "gw-013",
                    "previous_version": "4",
                    "directed_sequence": 9,
                    "rollback_sequence": None,
                    "state": "probation",
                    "reason": None,
                },
            ],
        },
        {
            "index": 1,
            "percent": 100.0,
            "max_failure_share": 0.05,
            "deadline_s": 1800.0,
            "status": "pending",
            "started_at": None,
            "deadline_at": None,
            "finished_at": None,
            "gateways": [],
        },
    ],
    "decisions": [
        {
            "id": 1,
            "rollout_id": 3,
            "stage_index": None,
            "at": "2026-02-01T09:00:00.000000Z",
            "actor": "key:2e9d01debaa0",
            "decision": "started",
            "reason": "beats version 4 on the January holdout [stages: 10% (2), 100% (18)]",
            "details": {},
        },
    ],
}


class GatewayOut(BaseModel):
    gateway_id: str
    #: what the gateway was directed to before; a rollback directs it back there
    previous_version: str | None
    directed_sequence: int | None
    rollback_sequence: int | None
    #: live deployment state, for the stage in flight only (``superseded``: directed elsewhere since)
    state: str | None
    reason: str | None


class StageOut(BaseModel):
    index: int
    percent: float
    max_failure_share: float
    deadline_s: float
    status: str
    started_at: datetime | None
    deadline_at: datetime | None
    finished_at: datetime | None
    gateways: list[GatewayOut]


class DecisionOut(BaseModel):
    id: int
    rollout_id: int
    stage_index: int | None
    at: datetime
    actor: str
    decision: str
    reason: str
    details: dict[str, Any]


class RolloutOut(BaseModel):
    rollout_id: int
    model_name: str
    version: str
    #: None: the general version (every device type without its own)
    device_type: str | None
    status: RolloutStatus
    plan: dict[str, Any]
    created_by: str
    created_at: datetime
    reason: str
    updated_at: datetime
    finished_at: datetime | None
    #: why it ended (or was halted)
    outcome: str | None
    #: the stage in flight's verdict so far
    progress: str | None
    stages: list[StageOut]
    decisions: list[DecisionOut]

    model_config = ConfigDict(json_schema_extra={"examples": [_ROLLOUT_EXAMPLE]})


class StartIn(BaseModel):
    model_name: str
    version: str
    device_type: str | None = Field(None, description="Roll out for this device type only; default: all.")
    reason: str = Field(min_length=1, description="Why; kept in the decisions and, at the end, the model history.")
    percentages: list[Annotated[Number, Field(gt=0, le=100)]] = Field(
        [10.0, 100.0],
        min_length=1,
        max_length=100,
        description="Cumulative share of the gateways each stage reaches, rising; ends at 100.",
    )
    canary_max_failure_share: Number = Field(
        DEFAULT_CANARY_FAILURE_SHARE, ge=0, lt=1, description="Failing share the canary may reach without halting."
    )
    max_failure_share: Number = Field(
        DEFAULT_FAILURE_SHARE, ge=0, lt=1, description="Failing share later stages may reach without halting."
    )
    stage_deadline_s: Number | None = Field(
        None,
        gt=0,
        le=MAX_DURATION_S,
        description="Seconds each stage's gateways have to commit (default: the deployment deadline).",
    )

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "component_failure",
                    "version": "5",
                    "reason": "beats version 4 on the January holdout",
                    "percentages": [5, 25, 100],
                    "stage_deadline_s": 3600,
                }
            ]
        }
    )


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, description="Why; kept in the rollout's decisions.")

    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "holiday change freeze"}]})


def _out(rollouts: StagedRollouts, record: store.RolloutRecord) -> RolloutOut:
    return RolloutOut(**rollout_view(rollouts, record))


@router.post("", response_model=RolloutOut, status_code=status.HTTP_201_CREATED, responses=_REFUSED)
def start(rollouts: SigningRollouts, key: Operator, body: StartIn) -> RolloutOut:
    """Start a staged rollout of a released version and direct its canary now."""
    deadline = {"stage_deadline": timedelta(seconds=body.stage_deadline_s)} if body.stage_deadline_s else {}
    plan = RolloutPlan(tuple(body.percentages), body.canary_max_failure_share, body.max_failure_share, **deadline)
    record = rollouts.start(
        body.model_name, body.version, body.device_type, actor=key.actor, reason=body.reason, plan=plan
    )
    return _out(rollouts, record)


@router.get("", response_model=list[RolloutOut], dependencies=[Depends(require_role(Role.VIEWER))])
def list_all(
    rollouts: Rollouts,
    db: Database,
    status_: Annotated[
        RolloutStatus | None, Query(alias="status", description="Only this status.", examples=["running"])
    ] = None,
    model: Annotated[str | None, Query(description="Only this model name.", examples=["component_failure"])] = None,
) -> list[RolloutOut]:
    """Rollouts, newest first."""
    return [_out(rollouts, store.load(db, i)) for i in store.list_ids(db, status_, model)]


@router.get("/{rollout_id}", response_model=RolloutOut, dependencies=[Depends(require_role(Role.VIEWER))])
def get(rollouts: Rollouts, db: Database, rollout_id: RolloutId) -> RolloutOut:
    """One rollout: its stages with each gateway's live standing, and every decision with its reason."""
    return _out(rollouts, store.load(db, rollout_id))


@router.post("/{rollout_id}/advance", response_model=RolloutOut, responses=_REFUSED)
def advance(rollouts: SigningRollouts, key: Operator, rollout_id: RolloutId) -> RolloutOut:
    """Judge the stage in flight now: start the next stage, complete, halt and roll back, or wait."""
    return _out(rollouts, rollouts.advance(rollout_id, actor=key.actor))


_OPERATOR_ACTIONS = {
    # path: (StagedRollouts method, signs documents, what it does)
    "halt": (
        "halt",
        False,
        "Stop advancing; directed gateways keep the new version until resumed, rolled back or cancelled.",
    ),
    "resume": ("resume", False, "Advance a halted rollout again; the stage in flight gets a full deadline from now."),
    "rollback": (
        "roll_back",
        True,
        "Put every gateway the rollout directed back on its previous version (higher-sequence documents).",
    ),
    "cancel": (
        "cancel",
        False,
        "End the rollout without promoting or rolling back: directed gateways keep the new version.",
    ),
}


def _operator_action(method: str, signing: bool):
    def act(rollouts: StagedRollouts, key: Operator, rollout_id: RolloutId, body: ReasonIn) -> RolloutOut:
        return _out(rollouts, getattr(rollouts, method)(rollout_id, actor=key.actor, reason=body.reason))

    act.__annotations__["rollouts"] = SigningRollouts if signing else Rollouts  # what FastAPI injects
    return act


for _path, (_method, _signing, _summary) in _OPERATOR_ACTIONS.items():
    router.post(
        f"/{{rollout_id}}/{_path}", response_model=RolloutOut, responses=_REFUSED, name=_path, description=_summary
    )(_operator_action(_method, _signing))
