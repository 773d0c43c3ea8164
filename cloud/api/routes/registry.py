"""Production versions: which one a device type runs, promotions, rollbacks and their history.

Registered before ``routes.models`` so ``/{model_name}/history`` and ``/{model_name}/active`` are not read as
version numbers. Promoting and rolling back sign director documents (``cloud.api.deps.Signer``: 503 without the
key passphrase).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Config, Operator, Registry, SignerDep, require_admin_to_override, require_role
from cloud.api.errors import error_responses
from cloud.api.params import Flag
from cloud.api.responses import domain_response
from cloud.api.roles import Role
from cloud.errors import NotFound
from cloud.registry import Change, version_lineage
from cloud.releases.director import IssueFailure

router = APIRouter(prefix="/api/models", tags=["models"], responses=error_responses(401, 403, 404, 503))

ModelName = Annotated[str, Path(description="Registered model name.", examples=["component_failure"])]
DeviceType = Annotated[
    str | None,
    Query(description="Device type; without it, the general version.", examples=["tank-50gal-electric"]),
]
_REFUSED = {
    409: {
        "description": "Refused by a registry rule (not released, failed evaluation, release files on disk not what "
        "TUF signed, …); nothing changed."
    }
}

_HISTORY_EXAMPLE = {
    "id": 7,
    "at": "2026-02-01T09:30:00Z",
    "actor": "key:2e9d01debaa0",
    "model_name": "component_failure",
    "device_type": None,
    "from_version": "3",
    "to_version": "4",
    "action": "promote",
    "reason": "beats version 3 on the January holdout",
    "override": False,
}


class HistoryEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    model_name: str
    #: None: the general version (every device type without its own)
    device_type: str | None
    from_version: str | None
    to_version: str
    action: str
    reason: str
    #: an admin let a version that failed evaluation through
    override: bool

    model_config = ConfigDict(json_schema_extra={"examples": [_HISTORY_EXAMPLE]})

    @classmethod
    def of(cls, row: dict) -> HistoryEntryOut:
        return cls(**{**row, "device_type": row["device_type"] or None, "override": bool(row["override"])})


class LineageOut(BaseModel):
    dataset_id: str | None
    feature_set_version: str | None
    training_parameters: dict[str, Any] | None
    code_version: str | None
    metrics: dict[str, Any]
    artifact_sha256: str | None
    tuf_target: str | None
    release_target: str | None
    targets_version: int | None
    signing_key_ids: list[str]


class ActiveModelOut(BaseModel):
    model_name: str
    model_version: str
    #: the device type production serves it to; None when it is the general version (the fallback)
    production_device_type: str | None
    lineage: LineageOut

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model_name": "component_failure",
                    "model_version": "4",
                    "production_device_type": None,
                    "lineage": {
                        "dataset_id": "ds-20260131-7f3a",
                        "feature_set_version": "fs1",
                        "training_parameters": {"max_depth": 3, "learning_rate": 0.1},
                        "code_version": "0.1.0",
                        "metrics": {"mean_roc_auc": 0.91},
                        "artifact_sha256": "9f2c0e5d7a1b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5",
                        "tuf_target": "models/component_failure/4/model.onnx",
                        "release_target": "models/component_failure/4/release.json",
                        "targets_version": 5,
                        "signing_key_ids": ["5b1c0d…"],
                    },
                }
            ]
        }
    )


class DirectedOut(BaseModel):
    gateway_id: str
    sequence: int


_NOT_DIRECTED_EXAMPLE = {
    "gateway_id": "gw-002",
    "reason": "gw-002 is at director sequence 9007199254740991, the largest there is (9007199254740991): it cannot "
    "be directed until it is re-provisioned",
    "failed_at": "2026-02-01T09:30:00Z",
    "attempts": 1,
}


@domain_response(_NOT_DIRECTED_EXAMPLE)
class NotDirectedOut(IssueFailure):
    """A gateway that got no document: recorded, and retried by the director publisher."""


class ChangeOut(BaseModel):
    history: HistoryEntryOut
    #: the new signed director documents, one per gateway directed
    directed: list[DirectedOut]
    #: gateways that could not be directed (the change is made all the same; they are retried)
    not_directed: list[NotDirectedOut] = []
    #: set when the broker could not be reached: the documents are stored and sent later
    pending: str | None = None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "history": _HISTORY_EXAMPLE,
                    "directed": [{"gateway_id": "gw-001", "sequence": 12}],
                    "not_directed": [_NOT_DIRECTED_EXAMPLE],
                    "pending": None,
                }
            ]
        }
    )


class PromoteIn(BaseModel):
    device_type: str | None = Field(None, description="Promote for this device type only; default: all.")
    reason: str = Field(min_length=1, description="Why; kept in the history.")
    override: Flag = Field(False, description="Admin only: promote although the version failed evaluation.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"device_type": None, "reason": "beats version 3 on the January holdout"}]}
    )


class RollbackIn(BaseModel):
    to_version: str | None = Field(None, description="Default: the version production had before the current one.")
    device_type: str | None = None
    reason: str = Field(min_length=1)
    override: Flag = Field(False, description="Admin only: roll back to a version that failed evaluation.")

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"to_version": None, "reason": "false alarms doubled after version 4"}]}
    )


def _change_out(change: Change) -> ChangeOut:
    return ChangeOut(
        history=HistoryEntryOut.of(change.history),
        directed=[DirectedOut(gateway_id=d.signed.gateway_id, sequence=d.signed.sequence) for d in change.documents],
        not_directed=change.failures,
        pending=change.pending,
    )


@router.post("/{model_name}/{version}/promote", response_model=ChangeOut, responses=_REFUSED)
def promote(
    registry: Registry,
    signer: SignerDep,
    key: Operator,
    model_name: ModelName,
    version: Annotated[str, Path(description="Model version.", examples=["4"])],
    body: PromoteIn,
) -> ChangeOut:
    """Make a released version production and direct gateways to it with new signed director documents."""
    require_admin_to_override(key, body.override)
    change = registry.promote_model_to_production(
        model_name,
        version,
        body.device_type,
        actor=key.actor,
        reason=body.reason,
        rollout=signer.releases(),
        override=body.override,
    )
    return _change_out(change)


@router.post("/{model_name}/rollback", response_model=ChangeOut, responses=_REFUSED)
def rollback(
    registry: Registry, signer: SignerDep, key: Operator, model_name: ModelName, body: RollbackIn
) -> ChangeOut:
    """Put an older release back in production: a new director document with a higher sequence names it.

    A version that failed evaluation comes back only with an admin's override, as for a promotion."""
    require_admin_to_override(key, body.override)
    change = registry.rollback_model(
        model_name,
        body.to_version,
        body.device_type,
        actor=key.actor,
        reason=body.reason,
        rollout=signer.releases(),
        override=body.override,
    )
    return _change_out(change)


@router.get(
    "/{model_name}/history",
    response_model=list[HistoryEntryOut],
    dependencies=[Depends(require_role(Role.VIEWER))],
)
def history(registry: Registry, model_name: ModelName, device_type: DeviceType = None) -> list[HistoryEntryOut]:
    """Every promotion and rollback of the model, newest first (one device type's when given)."""
    registry.list_versions(model_name)  # an unknown model is 404, not an empty history
    return [HistoryEntryOut.of(row) for row in registry.history(model_name, device_type)]


@router.get(
    "/{model_name}/active",
    response_model=ActiveModelOut,
    dependencies=[Depends(require_role(Role.VIEWER))],
)
def active(registry: Registry, config: Config, model_name: ModelName, device_type: DeviceType = None) -> ActiveModelOut:
    """The production version for the device type, falling back to the general one, with its lineage."""
    row = registry.get_active_model(model_name, device_type)
    if row is None:
        raise NotFound(f"{model_name!r} has no production version")
    return ActiveModelOut(
        model_name=row["model_name"],
        model_version=row["model_version"],
        production_device_type=row["production_device_type"] or None,
        lineage=LineageOut(**version_lineage(row, config.tuf_dir)),
    )
