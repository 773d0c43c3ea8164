"""Gateways the director could not give their latest desired state: why, since when, how many attempts.

Promotions, rollbacks, rollouts and experiments answer with the gateways they could not direct; this is where an
operator finds them later. The director publisher retries each one (``cloud.releases.director.failures_due``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cloud.api.deps import Database, require_role
from cloud.api.errors import error_responses
from cloud.api.roles import Role
from cloud.api.routes.registry import NotDirectedOut
from cloud.releases import director

router = APIRouter(
    prefix="/api/director",
    tags=["deployments"],
    dependencies=[Depends(require_role(Role.VIEWER))],
    responses=error_responses(401, 403, 503),
)


@router.get("/failures", response_model=list[NotDirectedOut])
def failures(db: Database) -> list[director.IssueFailure]:
    """Every gateway whose latest director document could not be issued, oldest failure first."""
    return director.failures(db)
