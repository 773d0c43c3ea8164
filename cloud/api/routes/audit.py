"""The audit log for admins: who changed what, whether the hash chain and its signed checkpoints still hold."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field

from cloud.api.deps import Admin, Config, Database, SignerDep, require_role
from cloud.api.errors import error_responses
from cloud.api.params import MAX_STORED_INT
from cloud.api.responses import domain_response
from cloud.api.roles import Role
from cloud.audit import MAX_LIMIT, AuditEntry, AuditLog, VerifyResult
from cloud.audit_checkpoints import AuditCheckpoints, Checkpoint, CheckpointExport, sign_now, verifying_keys
from cloud.releases import keystore

router = APIRouter(
    prefix="/api/audit",
    tags=["admin"],
    dependencies=[Depends(require_role(Role.ADMIN))],
    responses=error_responses(401, 403, 503),
)

_HASH = "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c0b2d4f6e8a0c2e4f6a8b0d2f4e6a8c0e"


@domain_response(
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
)
class AuditEntryOut(AuditEntry):
    """One entry of the hash-chained log, as ``cloud.audit`` keeps it."""


@domain_response(
    {
        "ok": True,
        "checked": 42,
        "head_id": 42,
        "head_hash": _HASH,
        "broken_id": None,
        "reason": None,
        "checkpoints": 3,
        "problems": [],
    },
    {
        "ok": False,
        "checked": 40,
        "head_id": 40,
        "head_hash": _HASH,
        "broken_id": None,
        "reason": None,
        "checkpoints": 3,
        "problems": [
            "the log was truncated: the checkpoint of 2026-02-06T11:00:00.000000Z (42 entries) signed "
            "42 entries, the log now has 40"
        ],
    },
    {
        "ok": False,
        "checked": 6,
        "head_id": 6,
        "head_hash": _HASH,
        "broken_id": 7,
        "reason": "entry 7 does not match its hash: it was changed",
        "checkpoints": 0,
        "problems": [],
    },
)
class VerifyOut(VerifyResult):
    """``ok`` false names the first entry that breaks the chain, or the ``problems`` of its checkpoints; the head is
    the last entry that holds."""

    #: signed checkpoints checked (``admin audit checkpoint``, or ``cloud serve`` on its schedule)
    checkpoints: int = 0
    #: each way the log fails its checkpoints: truncated, rewritten, a signature not the audit key's
    problems: list[str] = Field(default_factory=list)


@router.get("", response_model=list[AuditEntryOut])
def list_entries(
    db: Database,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="At most this many.", examples=[100])] = 100,
    since_id: Annotated[
        int, Query(ge=0, le=MAX_STORED_INT, description="Entries after this id (page on).", examples=[0])
    ] = 0,
    actor: Annotated[str | None, Query(description="Only this actor.", examples=["key:2e9d01debaa0"])] = None,
    action: Annotated[str | None, Query(description="Only this action.", examples=["http.post"])] = None,
) -> list[AuditEntry]:
    """Audit entries oldest first; page with ``since_id`` set to the last id you got."""
    return AuditLog(db).entries(limit, since_id, actor, action)


@router.get("/verify", response_model=VerifyOut)
def verify(db: Database, config: Config, signer: SignerDep) -> VerifyOut:
    """Recompute the hash chain and check every signed checkpoint against it: ``ok`` only if both hold."""
    public_keys, key_problems = verifying_keys(config.keys_dir, signer.held_passphrase)
    report = AuditCheckpoints(db).verify(public_keys)
    problems = key_problems + report.problems
    return VerifyOut(
        **{**vars(report.chain), "ok": report.ok and not problems}, checkpoints=report.checked, problems=problems
    )


@router.post("/checkpoints", response_model=Checkpoint, responses=error_responses(409))
def sign_checkpoint(db: Database, config: Config, signer: SignerDep, key: Admin) -> Checkpoint:
    """Sign the log's head now with the audit key; 409 if the log fails verification (nothing is signed)."""
    return sign_now(db, config.keys_dir, signer.passphrase(), actor=key.actor)


@router.get("/checkpoints", response_model=CheckpointExport)
def export_checkpoints(db: Database, config: Config) -> CheckpointExport:
    """Every checkpoint and the audit public keys: keep a copy elsewhere, check it with ``admin audit verify``.

    503 before the first checkpoint made the audit key."""
    return AuditCheckpoints(db).export(keystore.audit_public_keys(config.keys_dir))
