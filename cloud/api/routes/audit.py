"""The audit log for admins: who changed what, and whether the hash chain still holds."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict

from cloud.api.auth import require_role
from cloud.api.database import Database
from cloud.api.errors import error_responses
from cloud.api.roles import Role
from cloud.audit import MAX_LIMIT, AuditLog

router = APIRouter(
    prefix="/api/audit",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN))],
    responses=error_responses(401, 403, 503),
)

_HASH = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a0c2e4f6a8b0d2f4e6a8c0e"


class AuditEntryOut(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "at": "2026-02-06T11:00:00.000000Z",
                    "actor": "key:2e9d01debaa0",
                    "action": "http.post",
                    "target": "/api/models/water-heater-failure/4/promote",
                    "details": {
                        "method": "POST",
                        "path": "/api/models/water-heater-failure/4/promote",
                        "status": 200,
                        "body_sha256": _HASH,
                        "role": "operator",
                    },
                    "prev_hash": _HASH,
                    "hash": _HASH,
                }
            ]
        }
    )


class VerifyOut(BaseModel):
    """``ok`` false names the first entry that breaks the chain; the head is the last entry that holds."""

    ok: bool
    checked: int
    head_id: int | None
    head_hash: str | None
    broken_id: int | None
    reason: str | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"ok": True, "checked": 42, "head_id": 42, "head_hash": _HASH, "broken_id": None, "reason": None},
                {
                    "ok": False,
                    "checked": 6,
                    "head_id": 6,
                    "head_hash": _HASH,
                    "broken_id": 7,
                    "reason": "entry 7 does not match its hash: it was changed",
                },
            ]
        }
    )


@router.get("", response_model=list[AuditEntryOut])
def list_entries(
    db: Database,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.", examples=[100])] = 100,
    since_id: Annotated[int, Query(ge=0, description="Entries after this id (page on).", examples=[0])] = 0,
    actor: Annotated[str | None, Query(description="Only this actor.", examples=["key:2e9d01debaa0"])] = None,
    action: Annotated[str | None, Query(description="Only this action.", examples=["http.post"])] = None,
) -> list[AuditEntryOut]:
    """Audit entries oldest first; page with ``since_id`` set to the last id you got."""
    return [AuditEntryOut(**asdict(e)) for e in AuditLog(db).entries(limit, since_id, actor, action)]


@router.get("/verify", response_model=VerifyOut)
def verify(db: Database) -> VerifyOut:
    """Recompute the hash chain; note ``head_hash`` somewhere else to catch entries cut off the end later."""
    return VerifyOut(**asdict(AuditLog(db).verify()))
