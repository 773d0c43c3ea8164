"""Administration: the API keys that exist (never their secrets). Creating and revoking is on the CLI."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict

from cloud.api.auth import require_role
from cloud.api.database import Database
from cloud.api.errors import error_responses
from cloud.api.keys import KeyStore
from cloud.api.roles import Role

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN))],
    responses=error_responses(401, 403, 503),
)


class ApiKeyOut(BaseModel):
    key_id: str
    name: str
    role: Role
    gateway_id: str | None
    created_at: datetime
    revoked_at: datetime | None

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "key_id": "2e9d01debaa0",
                    "name": "gateway gw-001",
                    "role": "gateway",
                    "gateway_id": "gw-001",
                    "created_at": "2026-01-01T08:00:00Z",
                    "revoked_at": None,
                }
            ]
        }
    )


@router.get("/keys", response_model=list[ApiKeyOut])
def list_keys(db: Database) -> list[ApiKeyOut]:
    """Every API key, revoked ones included, oldest first; secrets are never stored, so never shown."""
    return [ApiKeyOut(**asdict(key)) for key in KeyStore(db).list()]
