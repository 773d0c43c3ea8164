"""Models: every version with its status, evaluation and lineage; what was live when; promote and roll back.

The page calls ``MLModelRegistry`` exactly as the API's registry routes do (``cloud.api.routes.registry``): the
same evaluation gate (``passes_gate``), the same release service to sign and direct gateways, the signed-in key as
the actor of the audit entry. Promoting first shows the gate's verdict on a page of its own, and only the form
there changes anything.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.deps import Registry, SignerDep, require_admin_to_override
from cloud.registry import passes_gate
from cloud.web.auth import OperatorPage, ViewerPage
from cloud.web.rendering import PageRoute, render

router = APIRouter(prefix="/models", route_class=PageRoute, include_in_schema=False)

OptionalText = Annotated[str, Form()]


def _version_view(row: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of a version row: its JSON columns read, its gate verdict said."""
    metrics = json.loads(row.get("metrics_json") or "{}")
    lineage = json.loads(row.get("lineage_json") or "{}")
    evaluated = row.get("evaluation_passed")
    return {
        **row,
        "metrics": metrics,
        "lineage": lineage,
        "verdict": "not evaluated" if evaluated is None else ("passed" if evaluated else "failed"),
        "evaluation": json.loads(row.get("evaluation_json") or "{}"),
    }


@router.get("")
def models(request: Request, registry: Registry, session: ViewerPage) -> HTMLResponse:
    versions = [_version_view(row) for row in registry.list_versions()]
    names = sorted({row["model_name"] for row in versions})
    by_model = {name: [row for row in versions if row["model_name"] == name] for name in names}
    return render(request, "models.html", {"by_model": by_model})


@router.get("/{model_name}")
def model(request: Request, registry: Registry, session: ViewerPage, model_name: str) -> HTMLResponse:
    versions = [_version_view(row) for row in reversed(registry.list_versions(model_name))]
    history = registry.history(model_name)
    return render(request, "model.html", {"model_name": model_name, "versions": versions, "history": history})


@router.get("/{model_name}/versions/{version}/promote")
def confirm_promotion(
    request: Request, registry: Registry, session: OperatorPage, model_name: str, version: str
) -> HTMLResponse:
    row = _version_view(registry.get_version(model_name, version))
    context = {"model_name": model_name, "row": row, "gate_passes": passes_gate(row)}
    return render(request, "promote.html", context)


@router.post("/{model_name}/versions/{version}/promote")
def promote(
    registry: Registry,
    signer: SignerDep,
    session: OperatorPage,
    model_name: str,
    version: str,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    device_type: OptionalText = "",
    override: Annotated[bool, Form()] = False,
) -> Response:
    require_admin_to_override(session.key, override)
    registry.promote_model_to_production(
        model_name,
        version,
        device_type or None,
        actor=session.key.actor,
        reason=reason,
        rollout=signer.releases(),
        override=override,
    )
    return RedirectResponse(f"/models/{model_name}", status_code=303)


@router.post("/{model_name}/rollback")
def rollback(
    registry: Registry,
    signer: SignerDep,
    session: OperatorPage,
    model_name: str,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    to_version: OptionalText = "",
    device_type: OptionalText = "",
    override: Annotated[bool, Form()] = False,
) -> Response:
    require_admin_to_override(session.key, override)
    registry.rollback_model(
        model_name,
        to_version or None,
        device_type or None,
        actor=session.key.actor,
        reason=reason,
        rollout=signer.releases(),
        override=override,
    )
    return RedirectResponse(f"/models/{model_name}", status_code=303)
