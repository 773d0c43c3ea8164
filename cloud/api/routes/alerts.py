"""The alert inbox (``cloud.alerts``): list, acknowledge, resolve, and scan now."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from cloud.alerts.inbox import MAX_PAGE, Alert, AlertInbox
from cloud.api.deps import Database, Operator, require_role
from cloud.api.errors import error_responses
from cloud.api.params import MAX_STORED_INT
from cloud.api.responses import domain_response
from cloud.api.roles import Role

router = APIRouter(prefix="/api/alerts", tags=["alerts"], responses=error_responses(401, 403))

_EXAMPLE = {
    "id": 12,
    "kind": "rollout_halted",
    "severity": "critical",
    "subject": "rollout 3: component_failure 7",
    "summary": "stage 1: 2 of 10 gateways rejected the version (20 % > 10 %)",
    "labels": {"alertname": "rollout_halted", "severity": "critical", "model": "component_failure", "version": "7"},
    "started_at": "2026-02-01T09:30:00.000000Z",
    "state": "acknowledged",
    "acknowledged_by": "key:2e9d01debaa0",
    "acknowledged_at": "2026-02-01T09:41:00.000000Z",
    "resolved_by": None,
    "resolved_at": None,
    "fingerprint": "rollout-halted:3:2026-02-01T09:30:00.000000Z",
}

AlertId = Annotated[int, Path(ge=1, le=MAX_STORED_INT, description="The alert's id.", examples=[12])]


@domain_response(_EXAMPLE)
class AlertOut(Alert):
    """An alert with who acknowledged and resolved it, and when."""


class ScanOut(BaseModel):
    #: ids of the alerts this pass raised
    raised: list[int]
    #: ids of the alerts whose condition ended (resolved by the system)
    cleared: list[int]
    #: sources that failed this pass (logged; the others ran)
    failed: list[str]

    model_config = ConfigDict(json_schema_extra={"examples": [{"raised": [13, 14], "cleared": [9], "failed": []}]})


class CountsOut(BaseModel):
    open: int
    acknowledged: int
    resolved: int

    model_config = ConfigDict(json_schema_extra={"examples": [{"open": 2, "acknowledged": 1, "resolved": 40}]})


@router.get("", response_model=list[AlertOut], dependencies=[Depends(require_role(Role.VIEWER))])
def list_alerts(
    db: Database,
    state: Annotated[
        Literal["open", "acknowledged", "resolved"] | None, Query(description="Only this state.", examples=["open"])
    ] = None,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_STORED_INT, description="Alerts older than this id (page on).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="At most this many.")] = 50,
) -> list[Alert]:
    """Newest first; page on with ``before_id`` set to the last id you got."""
    return AlertInbox(db).page(state, before_id, limit)


@router.get("/counts", response_model=CountsOut, dependencies=[Depends(require_role(Role.VIEWER))])
def alert_counts(db: Database) -> CountsOut:
    """How many alerts are open, acknowledged and resolved."""
    return CountsOut(**AlertInbox(db).counts())


@router.post("/scan", response_model=ScanOut, responses=error_responses(503))
def scan(db: Database, key: Operator) -> ScanOut:
    """Look at every source now rather than at the next pass of ``cloud serve``."""
    result = AlertInbox(db).scan()
    return ScanOut(raised=result.raised, cleared=result.cleared, failed=result.failed)


@router.post("/{alert_id}/acknowledge", response_model=AlertOut, responses=error_responses(404, 409))
def acknowledge(db: Database, key: Operator, alert_id: AlertId) -> Alert:
    """Say someone is on it (an open alert only)."""
    return AlertInbox(db).acknowledge(alert_id, key.actor)


@router.post("/{alert_id}/resolve", response_model=AlertOut, responses=error_responses(404, 409))
def resolve(db: Database, key: Operator, alert_id: AlertId) -> Alert:
    """Done with it (an open or acknowledged alert)."""
    return AlertInbox(db).resolve(alert_id, key.actor)
