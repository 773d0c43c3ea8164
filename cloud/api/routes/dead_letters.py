"""Messages ingest could not store, kept with the reason, so operators can see what gateways got wrong.

Payloads rest encrypted and are shown redacted (``cloud.dead_letters``): a refused outcome keeps its notes from view.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from cloud.api.deps import Database, require_role
from cloud.api.errors import error_responses
from cloud.api.responses import domain_response
from cloud.api.roles import Role
from cloud.dead_letters import DeadLetterView, recent

router = APIRouter(
    prefix="/api/dead-letters",
    tags=["operations"],
    dependencies=[Depends(require_role(Role.OPERATOR))],
    responses=error_responses(401, 403, 503),
)


@domain_response(
    {
        "id": 17,
        "topic": "iotsphere/v1/gw/gw-001/up/predictions",
        "reason": "validation: predictions.0.latency_ms: Input should be greater than or equal to 0",
        "received_at": "2026-01-31T06:00:01Z",
        "payload_bytes": 412,
        "payload_preview": '{"schema": 1, "msg_id": "…", "outcomes": [{"notes": "[redacted]", …}]}',
    }
)
class DeadLetterOut(DeadLetterView):
    """A message ingest could not store; the preview is the payload's start as UTF-8 (undecodable bytes replaced),
    notes, comments and technician redacted."""


@router.get("", response_model=list[DeadLetterOut])
def list_dead_letters(
    db: Database,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many, newest first.")] = 50,
) -> list[DeadLetterView]:
    """The most recent dead letters, newest first."""
    return recent(db, limit)
