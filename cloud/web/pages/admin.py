"""Administration: the audit log (filter, verify the chain from the page), API keys (create, shown once; revoke),
and dead letters. The same services as ``/api/audit``, ``/api/admin`` and ``/api/dead-letters``, with their roles.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.deps import Config, Database, Keys, SignerDep
from cloud.api.roles import Role
from cloud.audit import AuditLog
from cloud.audit_checkpoints import AuditCheckpoints, verifying_keys
from cloud.dead_letters import recent
from cloud.errors import Invalid
from cloud.web.auth import AdminPage, OperatorPage
from cloud.web.rendering import PageRoute, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)
PAGE = 100


@router.get("/audit")
def audit_log(
    request: Request,
    db: Database,
    session: AdminPage,
    actor: str = "",
    action: str = "",
    since: int = 0,
) -> HTMLResponse:
    """Oldest first from ``since`` (an entry id), as the API pages it; filter by actor and action."""
    entries = AuditLog(db).entries(PAGE, since, actor or None, action or None)
    context = {
        "entries": entries,
        "actor": actor,
        "action": action,
        "next": entries[-1].id if len(entries) == PAGE else None,
    }
    return render(request, "audit.html", context)


@router.post("/audit/verify")
def verify_audit_log(
    request: Request, db: Database, config: Config, signer: SignerDep, session: AdminPage
) -> HTMLResponse:
    """The chain and every signed checkpoint, checked now (a POST: it reads the whole log)."""
    public_keys, key_problems = verifying_keys(config.keys_dir, signer.held_passphrase)
    report = AuditCheckpoints(db).verify(public_keys)
    problems = key_problems + report.problems
    context = {"report": report, "problems": problems, "ok": report.ok and not problems}
    return render(request, "audit_verify.html", context)


@router.get("/admin/keys")
def keys_page(request: Request, keys: Keys, session: AdminPage) -> HTMLResponse:
    return render(request, "keys.html", {"keys": keys.list(), "roles": [role.value for role in Role], "issued": None})


@router.post("/admin/keys")
def create_key(
    request: Request,
    keys: Keys,
    session: AdminPage,
    role: Annotated[str, Form()],
    name: Annotated[str, Form(min_length=1, max_length=128)],
    gateway_id: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The new key's token is on this answer only: it is stored as a hash."""
    if role not in {r.value for r in Role}:
        raise Invalid(f"role must be one of {', '.join(r.value for r in Role)}, not {role!r}")
    issued = keys.create(role, name, gateway_id or None, actor=session.key.actor)
    context = {"keys": keys.list(), "roles": [r.value for r in Role], "issued": issued}
    return render(request, "keys.html", context, 201)


@router.post("/admin/keys/{key_id}/revoke")
def revoke_key(keys: Keys, session: AdminPage, key_id: str) -> Response:
    keys.revoke(key_id, actor=session.key.actor)
    return RedirectResponse("/admin/keys", status_code=303)


@router.get("/dead-letters")
def dead_letters(request: Request, db: Database, session: OperatorPage) -> HTMLResponse:
    """The newest dead letters, payloads redacted (as the API shows them)."""
    return render(request, "dead_letters.html", {"letters": recent(db, PAGE)})
