"""Gateways as their status and events report them: online, versions, director sequence, what happened."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import sqlite_utils
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict

from cloud import security_events
from cloud.api.deps import Database, require_role
from cloud.api.errors import error_responses
from cloud.api.roles import Role
from cloud.data import fleet as stored_fleet
from cloud.data.connections import connection_of
from cloud.errors import NotFound
from shared.messages import EventKind

router = APIRouter(
    prefix="/api/gateways",
    tags=["gateways"],
    dependencies=[Depends(require_role(Role.VIEWER))],
    responses=error_responses(401, 403, 404, 503),
)

_GATEWAY_EXAMPLE = {
    "gateway_id": "gw-001",
    "online": True,
    "first_seen": "2026-01-01T08:00:00Z",
    "last_seen": "2026-01-31T06:00:00Z",
    "agent_version": "0.1.0",
    "director_sequence": 7,
    "devices": 12,
    "security_events": 0,
    "status": {
        "online": True,
        "agent_version": "0.1.0",
        "models": [
            {
                "model_name": "component_failure",
                "active_version": "3",
                "installed_versions": ["2", "3"],
                "state": "committed",
            }
        ],
        "director_sequence": 7,
        "outbox_depth": 0,
        "health": "ok",
        "heaters": 12,
    },
}
_EVENT_EXAMPLE = {
    "msg_id": "5b1f0c9d8e7a4b3c2d1e0f9a8b7c6d5e",
    "kind": "reject",
    "model_name": "component_failure",
    "model_version": "4",
    "director_sequence": 8,
    "document_digest": "3f8a1c0e9b7d5f2a4c6e8b0d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a",
    "rule": "golden_vectors",
    "detail": "output probabilities[0][1] differs by 0.2 > 0.0001",
    "sent_at": "2026-01-31T06:01:00Z",
}


class GatewayOut(BaseModel):
    gateway_id: str
    online: bool
    first_seen: datetime | None
    last_seen: datetime | None
    agent_version: str | None
    director_sequence: int | None
    #: water heaters seen behind this gateway
    devices: int
    #: director documents this gateway was sent that the cloud never issued to it (``/api/security-events``)
    security_events: int
    #: the gateway's last ``up/status`` payload, parsed
    status: dict[str, Any] | None

    model_config = ConfigDict(json_schema_extra={"examples": [_GATEWAY_EXAMPLE]})


class GatewayEventOut(BaseModel):
    msg_id: str
    kind: EventKind
    model_name: str | None
    model_version: str | None
    director_sequence: int | None
    #: the director document the event is about, by SHA-256 (None from agents older than the digest)
    document_digest: str | None = None
    #: for a rejection, the verification rule that failed
    rule: str | None
    detail: str | None
    sent_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_EXAMPLE]})


class GatewayDetail(GatewayOut):
    device_ids: list[str]
    #: newest first
    recent_events: list[GatewayEventOut]

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{**_GATEWAY_EXAMPLE, "device_ids": ["wh-0001", "wh-0002"], "recent_events": [_EVENT_EXAMPLE]}]
        }
    )


def _gateways(db: sqlite_utils.Database, gateway_id: str | None = None) -> list[dict]:
    rows = [dict(row) for row in stored_fleet.gateways_with_device_counts(connection_of(db), gateway_id)]
    forged = {count.gateway_id: count.documents for count in security_events.counts(db, gateway_id)}
    for row in rows:
        row["security_events"] = forged.get(row["gateway_id"], 0)
        row["online"] = bool(row["online"])
        row["status"] = json.loads(row["status_json"]) if row["status_json"] else None
    return rows


@router.get("", response_model=list[GatewayOut])
def list_gateways(db: Database) -> list[GatewayOut]:
    """Every gateway that has reported, with its last status."""
    return [GatewayOut(**row) for row in _gateways(db)]


@router.get("/{gateway_id}", response_model=GatewayDetail)
def get_gateway(
    db: Database,
    gateway_id: Annotated[str, Path(description="Gateway id.", examples=["gw-001"])],
    events: Annotated[int, Query(ge=0, le=1000, description="How many recent events to include.")] = 20,
) -> GatewayDetail:
    """One gateway: last status, its water heaters and its recent update events (newest first)."""
    found = _gateways(db, gateway_id)
    if not found:
        raise NotFound(f"unknown gateway {gateway_id!r}")
    connection = connection_of(db)
    device_ids = stored_fleet.device_ids(connection, gateway_id)
    recent = stored_fleet.recent_events(connection, gateway_id, events)
    return GatewayDetail(**found[0], device_ids=device_ids, recent_events=[GatewayEventOut(**row) for row in recent])
