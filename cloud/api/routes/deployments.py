"""Per-gateway deployment state (``cloud.deployments``): what each gateway did with its latest director document."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import ConfigDict

from cloud.api.deps import Database, require_role
from cloud.api.errors import error_responses
from cloud.api.params import MAX_DURATION_S
from cloud.api.roles import Role
from cloud.deployments import DEADLINE_ENV, Deployment, DeploymentState, list_deployments, resolve_deadline
from cloud.errors import NotFound
from cloud.releases.director import latest_document

router = APIRouter(
    prefix="/api/deployments",
    tags=["deployments"],
    dependencies=[Depends(require_role(Role.VIEWER))],
    responses=error_responses(401, 403, 404, 503),
)

_DEPLOYMENT_EXAMPLE = {
    "gateway_id": "gw-001",
    "model_name": "component_failure",
    "version": "3",
    "director_sequence": 8,
    "state": "committed",
    "stage": "committed",
    "issued_at": "2026-01-31T06:00:00Z",
    "published_at": "2026-01-31T06:00:00.120000Z",
    "downloading_at": "2026-01-31T06:00:02.310000Z",
    "probation_at": "2026-01-31T06:00:02.350000Z",
    "committed_at": "2026-01-31T07:00:05.000000Z",
    "rejected_at": None,
    "rolled_back_at": None,
    "overdue_at": None,
    "rule": None,
    "reason": None,
    "gateway_sequence": 8,
}

DeadlineSeconds = Annotated[
    float | None,
    Query(
        gt=0,
        le=MAX_DURATION_S,
        description=f"Seconds a gateway has to commit or reject its document before it is overdue "
        f"(default: ${DEADLINE_ENV} on the server, else 1800).",
        examples=[1800],
    ),
]


class DeploymentOut(Deployment):
    model_config = ConfigDict(json_schema_extra={"examples": [_DEPLOYMENT_EXAMPLE]})


def _out(deployments: list[Deployment]) -> list[DeploymentOut]:
    return [DeploymentOut(**deployment.model_dump()) for deployment in deployments]


@router.get("", response_model=list[DeploymentOut])
def list_all(
    db: Database,
    gateway: Annotated[str | None, Query(description="Only this gateway.", examples=["gw-001"])] = None,
    model: Annotated[str | None, Query(description="Only this model name.", examples=["component_failure"])] = None,
    state: Annotated[DeploymentState | None, Query(description="Only this state.", examples=["overdue"])] = None,
    deadline_s: DeadlineSeconds = None,
) -> list[DeploymentOut]:
    """Each gateway's deployment of every model its latest director document names, by gateway then model."""
    return _out(list_deployments(db, gateway, model, state, resolve_deadline(deadline_s)))


@router.get("/{gateway_id}", response_model=list[DeploymentOut])
def for_gateway(
    db: Database,
    gateway_id: Annotated[str, Path(description="Gateway id.", examples=["gw-001"])],
    deadline_s: DeadlineSeconds = None,
) -> list[DeploymentOut]:
    """One gateway's deployments, one per model, with the time of each step; 404 if it was never directed."""
    if latest_document(db, gateway_id) is None:
        raise NotFound(f"no director document was issued to {gateway_id!r}")
    return _out(list_deployments(db, gateway_id, deadline=resolve_deadline(deadline_s)))
