"""Predictions by device, each with its model version, outputs, outcomes and ratings; on a prediction, the outcome
form (component, result) and the feedback form (rating 1–5, comment).

The same ``PredictionFeedbackService`` as ``/api/predictions/{id}/outcome|feedback`` and ``iotsphere feedback``,
with its roles: technicians record, everyone signed in reads, and notes and comments are shown decrypted to
operators only (as the API does). The outcome form carries an id made when the page was drawn, so a double submit
stores one outcome.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.deps import Database, Feedback
from cloud.api.roles import Role, permits
from cloud.errors import Invalid
from cloud.feedback import ActualOutcome
from cloud.predictions import find_predictions
from cloud.web.auth import TechnicianPage, ViewerPage
from cloud.web.rendering import PageRoute, render
from shared.messages import Component, FeedbackSource, OutcomeResult

router = APIRouter(prefix="/predictions", route_class=PageRoute, include_in_schema=False)
PAGE = 50


def _before(made_at: str, prediction_id: str) -> tuple[datetime, str] | None:
    if not made_at:
        return None
    try:
        return datetime.fromisoformat(made_at), prediction_id
    except ValueError as exc:
        raise Invalid(f"not a time: {made_at!r}") from exc


@router.get("")
def predictions(
    request: Request,
    db: Database,
    session: ViewerPage,
    device: str = "",
    model: str = "",
    before_at: str = "",
    before_id: str = "",
) -> HTMLResponse:
    """A device's predictions newest first, paged (a device id is asked for first: the store holds millions)."""
    found = []
    if device:
        found = find_predictions(
            db, device_id=device, model_name=model or None, before=_before(before_at, before_id), limit=PAGE
        )
    older = found[-1] if len(found) == PAGE else None
    context = {"predictions": found, "device": device, "model": model, "older": older}
    return render(request, "predictions.html", context)


@router.get("/{prediction_id}")
def prediction(request: Request, feedback: Feedback, session: ViewerPage, prediction_id: str) -> HTMLResponse:
    arms = find_predictions(feedback.db, prediction_id=prediction_id, limit=None)
    feedback.prediction(prediction_id)  # 404 for an unknown id
    readable = permits(session.key.role, Role.OPERATOR)
    context = {
        "prediction_id": prediction_id,
        "arms": arms,
        "outcomes": feedback.outcomes(prediction_id, readable),
        "ratings": feedback.feedback(prediction_id, readable),
        "components": [c.value for c in Component],
        "results": [r.value for r in OutcomeResult],
        "outcome_id": f"web-{uuid.uuid4().hex}",
    }
    return render(request, "prediction.html", context)


@router.post("/{prediction_id}/outcome")
def record_outcome(
    feedback: Feedback,
    session: TechnicianPage,
    prediction_id: str,
    result: Annotated[OutcomeResult, Form()],
    outcome_id: Annotated[str, Form(min_length=8, max_length=64)],
    component: Annotated[Component | None, Form()] = None,
    technician: Annotated[str, Form(max_length=128)] = "",
    notes: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    outcome = ActualOutcome(
        component=component, result=result, technician=technician or None, notes=notes or None, outcome_id=outcome_id
    )
    feedback.record_prediction_outcome(prediction_id, outcome, FeedbackSource.TECHNICIAN, actor=session.key.actor)
    return RedirectResponse(f"/predictions/{prediction_id}", status_code=303)


@router.post("/{prediction_id}/feedback")
def record_feedback(
    feedback: Feedback,
    session: TechnicianPage,
    prediction_id: str,
    rating: Annotated[int, Form(ge=1, le=5)],
    comments: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    feedback.record_user_feedback(prediction_id, rating, comments or None, session.key.key_id, actor=session.key.actor)
    return RedirectResponse(f"/predictions/{prediction_id}", status_code=303)
