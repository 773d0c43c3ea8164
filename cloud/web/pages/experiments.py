"""Experiments: every A/B test, and one test's arms, its always-valid p-value and confidence sequence over time,
its guardrails and decision log; operators start, stop and conclude.

The page calls ``ExperimentService`` as ``/api/experiments`` does: the same look (``status``), the same start,
stop and conclude with the signed-in key as actor; those three sign director documents, so without the passphrase
the page answers with the service's 503. The chart's points are the sequential test as it stood at evenly spaced
times since the start, each over the predictions made by then; the last point is the look the page shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import sqlite_utils
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.deps import Database, Experiments, SigningExperiments
from cloud.data import experiments as stored
from cloud.data.connections import connection_of
from cloud.errors import Invalid
from cloud.experiments.metrics import CHALLENGER, CHAMPION, arm_observations
from cloud.experiments.stats import ArmSummary, sequential_test
from cloud.storage import from_iso, iso
from cloud.web.auth import OperatorPage, ViewerPage
from cloud.web.rendering import PageRoute, render

router = APIRouter(prefix="/experiments", route_class=PageRoute, include_in_schema=False)
#: experiments a page of the list
PAGE = 30
#: points on the chart: each is one pass over the experiment's scored predictions
LOOKS = 12
#: what the chart draws of each look
_DRAWN = ("p_value", "difference", "low", "high")
Reason = Annotated[str, Form(max_length=500)]


@router.get("")
def experiments(request: Request, db: Database, session: ViewerPage, before: str | None = None) -> HTMLResponse:
    """Newest first, ``PAGE`` at a time: ``before`` is the last one shown, ``created_at|experiment_id``."""
    cursor = None
    if before is not None:
        created_at, _, experiment_id = before.partition("|")
        if not (created_at and experiment_id):
            raise Invalid(f"before is not a position in the list (created_at|experiment_id): {before!r}")
        cursor = (created_at, experiment_id)
    rows = stored.experiments_before(connection_of(db), cursor, PAGE)
    older = f"{rows[-1]['created_at']}|{rows[-1]['experiment_id']}" if len(rows) == PAGE else None
    return render(request, "experiments.html", {"experiments": rows, "before": before, "older": older})


def looks_over_time(db: sqlite_utils.Database, experiment: dict[str, Any]) -> dict[str, list[float]]:
    """The sequential test at ``LOOKS`` times from the start to the stop (or now); times without enough data
    on both arms are left out."""
    series: dict[str, list[float]] = {name: [] for name in ("x", *_DRAWN)}
    if experiment["started_at"] is None:
        return series
    start = from_iso(experiment["started_at"])
    end = from_iso(experiment["stopped_at"]) if experiment["stopped_at"] else datetime.now(UTC)
    for look in range(1, LOOKS + 1):
        at = start + (end - start) * look / LOOKS
        until = experiment["stopped_at"] if look == LOOKS else iso(at)  # the last look is the page's own
        observed = arm_observations(db, experiment, until=until)
        test = sequential_test(
            ArmSummary.of(observed[CHAMPION]),
            ArmSummary.of(observed[CHALLENGER]),
            experiment["min_detectable_effect"],
            experiment["alpha"],
        )
        if test is not None:
            series["x"].append(at.timestamp())
            for name in _DRAWN:
                series[name].append(getattr(test, name))
    return series


def _charts(experiment: dict[str, Any], looks: dict[str, list[float]]) -> dict[str, dict[str, Any]]:
    """What ``/static/charts.js`` draws: a time axis and named series."""
    alpha = [experiment["alpha"]] * len(looks["x"])
    return {
        "p_value": {
            "x": looks["x"],
            "y": "p-value",
            "log": True,
            "series": [
                {"label": "always-valid p-value", "values": looks["p_value"]},
                {"label": "alpha", "values": alpha},
            ],
        },
        "confidence": {
            "x": looks["x"],
            "y": f"challenger − champion ({experiment['metric']})",
            "series": [
                {"label": "difference", "values": looks["difference"]},
                {"label": "low", "values": looks["low"]},
                {"label": "high", "values": looks["high"]},
            ],
        },
    }


@router.get("/{experiment_id}")
def experiment(
    request: Request, db: Database, experiments: Experiments, session: ViewerPage, experiment_id: str
) -> HTMLResponse:
    look = experiments.status(experiment_id)
    looks = looks_over_time(db, look["experiment"])
    return render(request, "experiment.html", {**look, "charts": _charts(look["experiment"], looks)})


@router.post("/{experiment_id}/start")
def start(session: OperatorPage, experiments: SigningExperiments, experiment_id: str, reason: Reason = "") -> Response:
    experiments.start(experiment_id, actor=session.key.actor, reason=reason)
    return RedirectResponse(f"/experiments/{experiment_id}", status_code=303)


@router.post("/{experiment_id}/stop")
def stop(
    session: OperatorPage,
    experiments: SigningExperiments,
    experiment_id: str,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
) -> Response:
    experiments.stop(experiment_id, actor=session.key.actor, reason=reason)
    return RedirectResponse(f"/experiments/{experiment_id}", status_code=303)


@router.post("/{experiment_id}/conclude")
def conclude(
    session: OperatorPage,
    experiments: SigningExperiments,
    experiment_id: str,
    reason: Reason = "",
    force: Annotated[bool, Form()] = False,
) -> Response:
    experiments.conclude(experiment_id, actor=session.key.actor, reason=reason, force=force)
    return RedirectResponse(f"/experiments/{experiment_id}", status_code=303)
