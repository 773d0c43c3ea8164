"""Staged rollouts: every rollout newest first (paged), start one, and one rollout's stages, live while it runs.

The page calls ``StagedRollouts`` as ``/api/rollouts`` does: starting goes through the API route's own ``start``
with its ``StartIn`` validation, halting, resuming, rolling back and cancelling through the same methods, with the
signed-in key as actor. Starting and rolling back sign director documents: without the passphrase the page answers
with the service's 503. A live rollout's stages are a partial the page polls (htmx) while the rollout runs or is
halted; the gateways that failed are listed with their deployment state and why.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from cloud.api.deps import Config, Database, Registry, Rollouts, SignerDep, SigningRollouts
from cloud.api.routes.rollouts import StartIn
from cloud.api.routes.rollouts import start as start_rollout
from cloud.data import rollouts as stored
from cloud.data.connections import connection_of
from cloud.errors import Invalid
from cloud.rollouts import store
from cloud.rollouts.engine import StagedRollouts
from cloud.rollouts.plan import DEFAULT_CANARY_FAILURE_SHARE, DEFAULT_FAILURE_SHARE
from cloud.rollouts.store import LIVE
from cloud.rollouts.verdict import GatewayStanding
from cloud.rollouts.view import rollout_view
from cloud.web.auth import OperatorPage, ViewerPage
from cloud.web.rendering import PageRoute, render

router = APIRouter(prefix="/rollouts", route_class=PageRoute, include_in_schema=False)
PAGE = 30
#: seconds between two looks of a live rollout's page at its stages
POLL_S = 3
Text = Annotated[str, Form()]


@router.get("")
def rollouts(request: Request, db: Database, session: ViewerPage, before: int | None = None) -> HTMLResponse:
    ids = stored.rollout_ids_page(connection_of(db), before, PAGE)
    records = [store.load(db, i) for i in ids]
    older = ids[-1] if len(ids) == PAGE else None
    return render(request, "rollouts.html", {"rollouts": records, "older": older})


@router.get("/new")
def new(request: Request, registry: Registry, session: OperatorPage) -> HTMLResponse:
    released = [row for row in registry.list_versions() if row["release_target"]]
    context = {
        "released": released,
        "canary_share": DEFAULT_CANARY_FAILURE_SHARE,
        "share": DEFAULT_FAILURE_SHARE,
    }
    return render(request, "rollout_new.html", context)


def _numbers(text: str) -> list[float]:
    try:
        return [float(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise Invalid(f"stages must be numbers separated by commas, like 10, 50, 100; not {text!r}") from None


@router.post("")
def start(
    session: OperatorPage,
    rollouts: SigningRollouts,
    model_name: Text,
    version: Text,
    reason: Text,
    percentages: Text,
    canary_max_failure_share: Annotated[float, Form()],
    max_failure_share: Annotated[float, Form()],
    device_type: Text = "",
    stage_deadline_s: Annotated[float | None, Form()] = None,
) -> Response:
    try:
        body = StartIn(
            model_name=model_name,
            version=version,
            device_type=device_type or None,
            reason=reason,
            percentages=_numbers(percentages),
            canary_max_failure_share=canary_max_failure_share,
            max_failure_share=max_failure_share,
            stage_deadline_s=stage_deadline_s,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise Invalid(f"the rollout is not valid: {problems}") from None
    started = start_rollout(rollouts, session.key, body)
    return RedirectResponse(f"/rollouts/{started.rollout_id}", status_code=303)


def _failed(view: dict[str, Any]) -> list[dict[str, Any]]:
    """The gateways that failed: the stage in flight's now, a failed stage's as they stood when it failed."""
    found = [
        {"stage": stage["index"], **row}
        for stage in view["stages"]
        for row in stage["gateways"]
        if row["state"] and GatewayStanding(row["gateway_id"], row["state"], None, None, row["reason"]).failed
    ]
    for decision in view["decisions"]:
        if decision["decision"] == "stage_failed":
            standings = [GatewayStanding(**g) for g in decision["details"].get("gateways", [])]
            found += [
                {"stage": decision["stage_index"], "gateway_id": g.gateway_id, "state": g.state, "reason": g.reason}
                for g in standings
                if g.failed
            ]
    return found


def _progress_context(rollouts: StagedRollouts, rollout_id: int) -> dict[str, Any]:
    view = rollout_view(rollouts, store.load(rollouts.db, rollout_id))
    for stage in view["stages"]:
        stage["committed"] = sum(row["state"] == "committed" for row in stage["gateways"])
    return {"rollout": view, "failed": _failed(view), "live": view["status"] in LIVE, "poll_s": POLL_S}


@router.get("/{rollout_id}")
def rollout(request: Request, rollouts: Rollouts, session: ViewerPage, rollout_id: int) -> HTMLResponse:
    return render(request, "rollout.html", _progress_context(rollouts, rollout_id))


@router.get("/{rollout_id}/progress")
def progress(request: Request, rollouts: Rollouts, session: ViewerPage, rollout_id: int) -> HTMLResponse:
    """The stages, failed gateways and decisions alone: what the rollout's page polls while it is live."""
    return render(request, "rollout_progress.html", _progress_context(rollouts, rollout_id))


@router.post("/{rollout_id}/{action}")
def act(
    session: OperatorPage,
    config: Config,
    db: Database,
    signer: SignerDep,
    rollout_id: int,
    action: Literal["halt", "resume", "rollback", "cancel"],
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    """Halt, resume and cancel sign nothing; rolling back signs director documents (the passphrase is needed)."""
    rollouts = StagedRollouts(config, db, signer.passphrase() if action == "rollback" else None)
    method = {
        "halt": rollouts.halt,
        "resume": rollouts.resume,
        "rollback": rollouts.roll_back,
        "cancel": rollouts.cancel,
    }
    method[action](rollout_id, actor=session.key.actor, reason=reason)
    return RedirectResponse(f"/rollouts/{rollout_id}", status_code=303)
