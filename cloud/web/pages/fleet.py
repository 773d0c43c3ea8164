"""Fleet and Gateway pages: every gateway's connection state, versions and deployments, paged by id; one gateway's
status per model and its timeline.

Both read the owners directly (``cloud.data.fleet``, ``cloud.deployments``), a page at a time: the fleet list is one
keyset query walking the gateways' primary key (filters included), plus each listed gateway's deployments, so it
costs the same at 100,000 gateways as at ten. A gateway is stale when its last status said online but it has been
silent longer than ``IOTSPHERE_GATEWAY_STALE_AFTER_S`` (the metrics' and the alerts' threshold).

Deployment states (overdue among them: no answer within ``IOTSPHERE_DEPLOYMENT_DEADLINE_S``) are derived from every
gateway's events, too slow for a page at fleet scale: their counts and the filter by them read the census
(``cloud.web.census``), and a filtered page is the census's gateways in that state, a chunk at a time through the
same keyset query with the other filters.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import RowMapping

from cloud.api.deps import Database
from cloud.config import environment
from cloud.data import fleet
from cloud.data.connections import connection_of
from cloud.data.times import iso
from cloud.deployments import Deployment, list_deployments
from cloud.errors import Invalid, NotFound, Unavailable
from cloud.web import census, timeline
from cloud.web.auth import ViewerPage
from cloud.web.rendering import PageRoute, render
from shared.settings import Settings

router = APIRouter(prefix="/fleet", route_class=PageRoute, include_in_schema=False)
PAGE = 50
TIMELINE_PAGE = 50
#: gateway ids of the census read per query when filtering by deployment state
CENSUS_CHUNK = 500


def _stale_before(settings: Settings) -> str:
    return iso(datetime.now(UTC) - timedelta(seconds=settings.gateway_stale_after_s))


def _models(status_json: str | None) -> list[dict[str, Any]]:
    """The models a gateway's last status says it serves (its ``models`` list), as reported."""
    status = json.loads(status_json) if status_json else None
    return (status.get("models") or []) if isinstance(status, dict) else []


def _deployments(db: Database, gateway_ids: list[str], settings: Settings) -> dict[str, dict[str, Deployment]]:
    """gateway id → model name → deployment, of the gateways named: one query for the page."""
    deadline = timedelta(seconds=settings.deployment_deadline_s)
    found: dict[str, dict[str, Deployment]] = {gateway_id: {} for gateway_id in gateway_ids}
    for deployment in list_deployments(db, deadline=deadline, gateway_ids=gateway_ids):
        found[deployment.gateway_id][deployment.model_name] = deployment
    return found


def _census_taker(request: Request) -> census.CensusTaker:
    return request.app.state.deployment_census


def _counts(request: Request, db: Database, settings: Settings) -> dict[str, Any]:
    """The counts by connection state (counted now) and by deployment state (the latest census, if any)."""
    return {
        "states": fleet.gateway_states(connection_of(db), _stale_before(settings)),
        "census": _census_taker(request).latest(),
        "deployment_states": census.STATES,
    }


def _in_deployment_state(
    request: Request, db: Database, settings: Settings, deployment: str, after: str | None, filters: dict[str, str]
) -> list[RowMapping]:
    """A page of the gateways the census found with a deployment in ``deployment``, after ``after``, that pass the
    other filters: the census's ids a chunk at a time, each chunk one keyset query."""
    taken = _census_taker(request).first()
    if taken is None:
        raise Unavailable("the fleet's deployment states could not be counted yet: try again in a moment")
    ids, rows = taken.after(deployment, after, filters["q"]), []
    for start in range(0, len(ids), CENSUS_CHUNK):
        rows += fleet.gateway_page(
            connection_of(db),
            _stale_before(settings),
            PAGE - len(rows),
            state=filters["state"] or None,
            version=filters["version"] or None,
            among=ids[start : start + CENSUS_CHUNK],
        )
        if len(rows) == PAGE:
            break
    return rows


@router.get("")
def fleet_list(
    request: Request,
    db: Database,
    session: ViewerPage,
    q: str = "",
    state: str = "",
    version: str = "",
    deployment: str = "",
    after: str | None = None,
) -> HTMLResponse:
    if state and state not in fleet.CONNECTION_STATES:
        raise Invalid(f"state must be one of {', '.join(fleet.CONNECTION_STATES)}, not {state!r}")
    if deployment and deployment not in census.STATES:
        raise Invalid(f"deployment must be one of {', '.join(census.STATES)}, not {deployment!r}")
    connection, settings = connection_of(db), environment()  # read once: building the settings costs milliseconds
    filters = {"q": q.strip(), "state": state, "version": version.strip(), "deployment": deployment}
    if deployment:
        rows = _in_deployment_state(request, db, settings, deployment, after, filters)
    else:
        rows = fleet.gateway_page(
            connection, _stale_before(settings), PAGE, after, filters["q"], state or None, filters["version"] or None
        )
    ids = [row["gateway_id"] for row in rows]
    devices, deployments = fleet.device_counts(connection, ids), _deployments(db, ids, settings)
    gateways = [
        {
            **row,
            "models": _models(row["status_json"]),
            "deployments": deployments[row["gateway_id"]],
            "devices": devices.get(row["gateway_id"], 0),
        }
        for row in rows
    ]
    context = {
        "gateways": gateways,
        "counts": _counts(request, db, settings),
        "states": fleet.CONNECTION_STATES,
        "filters": filters,
        "query": urlencode({name: value for name, value in filters.items() if value}),
        "after": after,
        "next": rows[-1]["gateway_id"] if len(rows) == PAGE else None,
    }
    return render(request, "fleet.html", context)


@router.get("/~counts")  # "~" is in no gateway id (shared.topics.validate_id)
def fleet_counts(request: Request, db: Database, session: ViewerPage) -> HTMLResponse:
    """The counts by state alone: the fleet page polls them."""
    return render(request, "fleet_counts.html", {"counts": _counts(request, db, environment())})


def _status_per_model(
    db: Database, gateway_id: str, status_json: str | None, settings: Settings
) -> list[dict[str, Any]]:
    """Per model: what the gateway runs (its last status) beside what it was directed to (its deployment)."""
    running = {model.get("model_name"): model for model in _models(status_json)}
    directed = _deployments(db, [gateway_id], settings)[gateway_id]
    return [
        {"model_name": name, "running": running.get(name), "deployment": directed.get(name)}
        for name in sorted(set(running) | set(directed), key=str)
    ]


def _reported(db: Database, gateway_id: str, settings: Settings) -> RowMapping:
    row = fleet.gateway_row(connection_of(db), gateway_id, _stale_before(settings))
    if row is None:
        raise NotFound(f"no gateway {gateway_id!r} has reported")
    return row


@router.get("/{gateway_id}")
def gateway(
    request: Request, db: Database, session: ViewerPage, gateway_id: str, before: str | None = None
) -> HTMLResponse:
    settings = environment()
    row = _reported(db, gateway_id, settings)
    try:
        cursor = timeline.parse_cursor(before)
    except ValueError as exc:
        raise Invalid(f"before is not a timeline position: {exc}") from exc
    connection = connection_of(db)
    items, older = timeline.page(connection, gateway_id, cursor, TIMELINE_PAGE)
    context = {
        "gateway": row,
        "devices": fleet.device_counts(connection, [gateway_id]).get(gateway_id, 0),
        "models": _status_per_model(db, gateway_id, row["status_json"], settings),
        "items": items,
        "before": before,
        "older": older,
    }
    return render(request, "gateway.html", context)


@router.get("/{gateway_id}/~status")
def gateway_status(request: Request, db: Database, session: ViewerPage, gateway_id: str) -> HTMLResponse:
    """The status per model alone: the gateway page polls it."""
    settings = environment()
    row = _reported(db, gateway_id, settings)
    models = _status_per_model(db, gateway_id, row["status_json"], settings)
    return render(request, "gateway_status.html", {"gateway": row, "models": models})
