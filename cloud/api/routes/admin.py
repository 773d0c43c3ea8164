"""Administration: the API keys that exist (never their secrets). Creating and revoking is on the CLI."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from cloud.api.deps import Keys, require_role
from cloud.api.errors import error_responses
from cloud.api.keys import ApiKey
from cloud.api.responses import domain_response
from cloud.api.roles import Role

router = APIRouter(
    prefix="/api/admin",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN))],
    responses=error_responses(401, 403, 503),
)


@domain_response(
    {
        "key_id": "2e9d01debaa0",
        "name": "gateway gw-001",
        "role": "gateway",
        "gateway_id": "gw-001",
        "created_at": "2026-01-01T08:00:00Z",
        "revoked_at": None,
    }
)
class ApiKeyOut(ApiKey):
    """A key as stored, without its secret (never stored, so never shown)."""


@router.get("/keys", response_model=list[ApiKeyOut])
def list_keys(keys: Keys) -> list[ApiKey]:
    """Every API key, revoked ones included, oldest first; secrets are never stored, so never shown."""
    return keys.list()
