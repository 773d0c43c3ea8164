"""Director documents gateways reported that the cloud never issued to them (``cloud.security_events``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import ConfigDict

from cloud.api.deps import Database, require_role
from cloud.api.errors import error_responses
from cloud.api.params import UtcIsoDatetime
from cloud.api.roles import Role
from cloud.security_events import MAX_LIMIT, GatewaySecurityCount, SecurityEvent, counts, list_events

router = APIRouter(
    prefix="/api/security-events",
    tags=["security"],
    dependencies=[Depends(require_role(Role.VIEWER))],
    responses=error_responses(401, 403, 503),
)

_DIGEST = "3f8a1c0e9b7d5f2a4c6e8b0d1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f9a"
_EVENT_EXAMPLE = {
    "gateway_id": "gw-001",
    "document_digest": _DIGEST,
    "finding": "forged",
    "issued_to": None,
    "kind": "reject",
    "rule": "director.signature",
    "detail": "0 valid signature(s) from trusted director keys, 1 required",
    "director_sequence": 8,
    "first_seen_at": "2026-01-31T06:01:00Z",
    "last_seen_at": "2026-01-31T06:01:00Z",
    "sightings": 1,
    "alerted_at": "2026-01-31T06:01:01Z",
}

GatewayFilter = Annotated[str | None, Query(description="Only this gateway.", examples=["gw-001"])]


class SecurityEventOut(SecurityEvent):
    model_config = ConfigDict(json_schema_extra={"examples": [_EVENT_EXAMPLE]})


class GatewaySecurityCountOut(GatewaySecurityCount):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"gateway_id": "gw-001", "documents": 3, "sightings": 5, "last_seen_at": "2026-01-31T06:01:00Z"}
            ]
        }
    )


@router.get("", response_model=list[SecurityEventOut])
def list_security_events(
    db: Database,
    gateway_id: GatewayFilter = None,
    since: Annotated[
        UtcIsoDatetime | None,
        Query(description="Only documents seen at or after this time.", examples=["2026-01-31T00:00:00Z"]),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.", examples=[100])] = 100,
) -> list[SecurityEventOut]:
    """Each document a gateway was sent that the cloud never issued to it, latest sighting first, with the rule
    that caught it: ``forged`` (never issued) or ``foreign`` (issued to another gateway)."""
    return [SecurityEventOut(**event.model_dump()) for event in list_events(db, gateway_id, since, limit)]


@router.get("/counts", response_model=list[GatewaySecurityCountOut])
def security_event_counts(db: Database, gateway_id: GatewayFilter = None) -> list[GatewaySecurityCountOut]:
    """Per gateway that was sent any: how many such documents, and how many events named them."""
    return [GatewaySecurityCountOut(**count.model_dump()) for count in counts(db, gateway_id)]
