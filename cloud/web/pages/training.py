"""Training: runs with their live status and log, schedules, retraining policies and every retraining decision.

The page calls what ``/api/training`` and ``/api/retraining`` call, with their roles: ``ModelTrainingPipeline``
queues and cancels runs and adds and removes schedules, ``RetrainingService`` changes a policy; each change is
audited with the signed-in key. Runs and decisions come in keyset pages, newest first. The runs table is polled
(htmx) while a run on it is queued or running, and a run's status and log are a partial its page polls until it
ends. Editing a schedule replaces it in one transaction (the pipeline's unschedule and schedule, both audited): the
store keeps no other change to a schedule.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.deps import Database, Pipeline, Retraining
from cloud.data import retraining as stored_retraining
from cloud.data import training as stored_training
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid
from cloud.pipeline.runs import FINISHED, TrainingRun
from cloud.pipeline.schedules import DEFAULT_WINDOW_DAYS, Schedule
from cloud.pipeline.training import DEFAULT_MARGIN
from cloud.retraining.service import decision_out
from cloud.web.auth import OperatorPage, ViewerPage
from cloud.web.rendering import PageRoute, render
from shared.messages import PredictionType

router = APIRouter(prefix="/training", route_class=PageRoute, include_in_schema=False)
PAGE = 30
#: seconds between two looks of a live run's page at its status and log, and of the runs table at its runs
POLL_S = 2
LIST_POLL_S = 5
MODELS = tuple(kind.value for kind in PredictionType)
Text = Annotated[str, Form(max_length=200)]


def _runs(db: Database, model: str, runs_at: str | None, runs_id: str | None) -> dict[str, Any]:
    """One page of runs; polled while one of them is queued or running."""
    cursor = (runs_at, runs_id) if runs_at and runs_id else None
    rows = stored_training.runs_before(connection_of(db), model or None, cursor, PAGE)
    runs = [TrainingRun.from_row(row) for row in rows]
    return {
        "model": model,
        "runs": runs,
        "older_runs": runs[-1] if len(runs) == PAGE else None,
        "runs_live": any(run.status not in FINISHED for run in runs),
        "runs_query": urlencode({"model": model, "runs_at": runs_at or "", "runs_id": runs_id or ""}),
        "poll_s": LIST_POLL_S,
    }


@router.get("")
def training(
    request: Request,
    db: Database,
    pipeline: Pipeline,
    retraining: Retraining,
    session: ViewerPage,
    model: str = "",
    runs_at: str | None = None,
    runs_id: str | None = None,
    decisions_before: int | None = None,
) -> HTMLResponse:
    decisions = stored_retraining.decisions_before(connection_of(db), model or None, decisions_before, PAGE)
    context = _runs(db, model, runs_at, runs_id) | {
        "models": MODELS,
        "schedules": pipeline.schedules.list(model or None),
        "policies": {name: asdict(retraining.policies.get(name)) for name in MODELS},
        "decisions": [decision_out(row) for row in decisions],
        "older_decisions": decisions[-1]["id"] if len(decisions) == PAGE else None,
        "window_days": DEFAULT_WINDOW_DAYS,
        "margin": DEFAULT_MARGIN,
    }
    return render(request, "training.html", context)


@router.get("/runs-table")
def runs_table(
    request: Request,
    db: Database,
    session: ViewerPage,
    model: str = "",
    runs_at: str | None = None,
    runs_id: str | None = None,
) -> HTMLResponse:
    """The runs table alone: what the training page polls while a run on it is queued or running."""
    return render(request, "training_runs.html", _runs(db, model, runs_at, runs_id))


def _run_context(pipeline, run_id: str) -> dict[str, Any]:
    run = pipeline.runs.get(run_id)
    return {"run": run, "logs": pipeline.runs.logs(run_id), "live": run.status not in FINISHED, "poll_s": POLL_S}


@router.get("/runs/{run_id}")
def run(request: Request, pipeline: Pipeline, session: ViewerPage, run_id: str) -> HTMLResponse:
    return render(request, "training_run.html", _run_context(pipeline, run_id))


@router.get("/runs/{run_id}/status")
def run_status(request: Request, pipeline: Pipeline, session: ViewerPage, run_id: str) -> HTMLResponse:
    """The run's status, progress and log alone: what its page polls until the run ends."""
    return render(request, "training_run_status.html", _run_context(pipeline, run_id))


@router.post("/runs")
def trigger(session: OperatorPage, pipeline: Pipeline, model_name: Text, start: Text, end: Text) -> Response:
    made = pipeline.trigger_model_training(model_name, start, end, actor=session.key.actor)
    return RedirectResponse(f"/training/runs/{made.run_id}", status_code=303)


@router.post("/runs/{run_id}/cancel")
def cancel(session: OperatorPage, pipeline: Pipeline, run_id: str) -> Response:
    pipeline.cancel_run(run_id, actor=session.key.actor)
    return RedirectResponse(f"/training/runs/{run_id}", status_code=303)


def _options(margin: float, device_type: str) -> dict[str, Any]:
    return {"margin": margin, "device_type": device_type or None}


@router.post("/schedules")
def add_schedule(
    session: OperatorPage,
    pipeline: Pipeline,
    model_name: Text,
    schedule: Text,
    window_days: Annotated[int, Form(ge=1, le=3650)] = DEFAULT_WINDOW_DAYS,
    margin: Annotated[float, Form(ge=0, lt=1)] = DEFAULT_MARGIN,
    device_type: Text = "",
) -> Response:
    options = _options(margin, device_type)
    pipeline.schedule_regular_training(model_name, schedule, window_days, options, actor=session.key.actor)
    return RedirectResponse("/training#schedules", status_code=303)


@router.get("/schedules/{schedule_id}/edit")
def edit_schedule(request: Request, pipeline: Pipeline, session: OperatorPage, schedule_id: int) -> HTMLResponse:
    return render(
        request, "training_schedule.html", {"schedule": pipeline.schedules.get(schedule_id), "models": MODELS}
    )


@router.post("/schedules/{schedule_id}")
def replace_schedule(
    db: Database,
    session: OperatorPage,
    pipeline: Pipeline,
    schedule_id: int,
    schedule: Text,
    window_days: Annotated[int, Form(ge=1, le=3650)],
    margin: Annotated[float, Form(ge=0, lt=1)],
    device_type: Text = "",
) -> Response:
    """The schedule as edited, in place of the old one: both steps or neither."""
    with write_transaction(db):
        old: Schedule = pipeline.unschedule(schedule_id, actor=session.key.actor)
        options = old.options | _options(margin, device_type)
        pipeline.schedule_regular_training(old.model_name, schedule, window_days, options, actor=session.key.actor)
    return RedirectResponse("/training#schedules", status_code=303)


@router.post("/schedules/{schedule_id}/delete")
def delete_schedule(session: OperatorPage, pipeline: Pipeline, schedule_id: int) -> Response:
    pipeline.unschedule(schedule_id, actor=session.key.actor)
    return RedirectResponse("/training#schedules", status_code=303)


@router.get("/policies/{model_name}")
def policy(request: Request, retraining: Retraining, session: OperatorPage, model_name: PredictionType) -> HTMLResponse:
    current = asdict(retraining.policies.get(model_name.value))
    return render(request, "training_policy.html", {"model_name": model_name.value, "policy": current})


def _setting(name: str, current: Any, sent: Any) -> Any:
    """A form's text as the setting's type (a checkbox left unticked is absent: false)."""
    if isinstance(current, bool):
        return sent == "true"
    try:
        return type(current)(sent)
    except (TypeError, ValueError):
        raise Invalid(f"{name} must be {type(current).__name__}, not {sent!r}") from None


@router.post("/policies/{model_name}")
async def change_policy(
    request: Request, retraining: Retraining, session: OperatorPage, model_name: PredictionType
) -> Response:
    """Every setting of the form, through ``set_policy`` as ``PATCH /api/retraining/policies`` does."""
    form = await request.form()
    current = asdict(retraining.policies.get(model_name.value))
    changes = {name: _setting(name, value, form.get(name)) for name, value in current.items()}
    retraining.set_policy(model_name.value, changes, actor=session.key.actor)
    return RedirectResponse("/training#policies", status_code=303)
