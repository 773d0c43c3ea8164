"""Models: every version with its status, evaluation and lineage; what was live when; promote and roll back.

The page calls ``MLModelRegistry`` exactly as the API's registry routes do (``cloud.api.routes.registry``): the
same evaluation gate (``passes_gate``), the same release service to sign and direct gateways, the signed-in key as
the actor of the audit entry. Promoting first shows the gate's verdict on a page of its own, and only the form
there changes anything.

Comparing two versions (``/models/{name}/compare?a=&b=``) sets their held-out evaluations beside their field
metrics from outcomes over a period the Monitoring page would show (``cloud.web.comparison``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.deps import Database, Monitor, Registry, SignerDep, require_admin_to_override
from cloud.errors import Invalid
from cloud.monitoring.performance import ANY_FAILURE, WHOLE_PERIOD, resolve_period
from cloud.registry import passes_gate
from cloud.storage import iso
from cloud.web.auth import OperatorPage, ViewerPage
from cloud.web.comparison import field_tables, numbers, side_by_side
from cloud.web.pages.monitoring import COMPONENTS, PERIODS, coverage
from cloud.web.rendering import PageRoute, render
from shared.messages import PredictionType

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


@router.get("/{model_name}/compare")
def compare(
    request: Request,
    db: Database,
    registry: Registry,
    monitor: Monitor,
    session: ViewerPage,
    model_name: str,
    a: str = "",
    b: str = "",
    period: str = "last_week",
    component: str = ANY_FAILURE,
) -> HTMLResponse:
    """Two versions side by side; without both chosen, only the form that chooses them."""
    versions = [row["model_version"] for row in reversed(registry.list_versions(model_name))]
    context: dict[str, Any] = {"model_name": model_name, "versions": versions, "a": a, "b": b, "period": period}
    context |= {"periods": PERIODS, "component": component, "components": ()}
    if not (a and b):
        return render(request, "compare.html", context)
    if a == b:
        raise Invalid(f"choose two different versions of {model_name} to compare, not version {a} twice")
    rows = {version: _version_view(registry.get_version(model_name, version)) for version in (a, b)}
    if rows[a]["prediction_type"] == PredictionType.COMPONENT_FAILURE:
        context["components"] = COMPONENTS
        if component not in COMPONENTS:
            raise Invalid(f"unknown component {component!r}: one of {', '.join(COMPONENTS)}")
    start, end, _ = resolve_period(period)
    computed = monitor.compute_metrics(model_name, start, end, WHOLE_PERIOD, ("model_version", "device_type"))
    holdout = {version: numbers(row["metrics"].get("holdout") or {}) for version, row in rows.items()}
    context |= {
        "rows": rows,
        "holdout": side_by_side(holdout[a], holdout[b]),
        "field": field_tables(computed, coverage(db, model_name, iso(start), iso(end)), a, b, component),
        "start": iso(start),
        "end": iso(end),
    }
    return render(request, "compare.html", context)


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
