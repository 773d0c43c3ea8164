"""Alerts inbox: what needs a person, newest first, by state; acknowledge and resolve in place (htmx swaps the row).

The same ``AlertInbox`` as ``/api/alerts`` and ``iotsphere alerts``; a change is audited with the signed-in key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cloud.alerts.inbox import STATES, AlertInbox
from cloud.api.deps import Database
from cloud.errors import Invalid
from cloud.web.auth import OperatorPage, ViewerPage
from cloud.web.rendering import PageRoute, render

router = APIRouter(prefix="/alerts", route_class=PageRoute, include_in_schema=False)
PAGE = 50


@router.get("")
def inbox(
    request: Request, db: Database, session: ViewerPage, state: str = "open", before: int | None = None
) -> HTMLResponse:
    if state not in (*STATES, "all"):
        raise Invalid(f"state must be one of {', '.join(STATES)} or all, not {state!r}")
    alerts = AlertInbox(db).page(None if state == "all" else state, before, PAGE)
    context = {
        "alerts": alerts,
        "state": state,
        "states": (*STATES, "all"),
        "counts": AlertInbox(db).counts(),
        "older": alerts[-1].id if len(alerts) == PAGE else None,
    }
    return render(request, "alerts.html", context)


def _row(request: Request, db: Database, alert_id: int) -> HTMLResponse:
    return render(request, "alert_row.html", {"alert": AlertInbox(db).get(alert_id)})


@router.post("/{alert_id}/acknowledge")
def acknowledge(request: Request, db: Database, session: OperatorPage, alert_id: int) -> HTMLResponse:
    AlertInbox(db).acknowledge(alert_id, session.key.actor)
    return _row(request, db, alert_id)


@router.post("/{alert_id}/resolve")
def resolve(request: Request, db: Database, session: OperatorPage, alert_id: int) -> HTMLResponse:
    AlertInbox(db).resolve(alert_id, session.key.actor)
    return _row(request, db, alert_id)
