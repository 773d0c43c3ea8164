"""Drift: per model, device type and feature, the drift statistic over the recorded checks, the latest check's
verdict per feature and its data-quality findings, and every check in keyset pages; operators run a check.

Running a check calls ``detect_model_drift`` and ``record_check`` as ``POST /api/monitoring/drift/{model}/check``
does, with the signed-in key as actor. The chart reads what each check stored (its ``result_json``): a feature's
statistic in a segment is there whether the check covered every device type (a segment per type) or one.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud.api.deps import Database
from cloud.data import monitoring as stored_monitoring
from cloud.data.connections import connection_of
from cloud.monitoring.drift import ALL, DEFAULT_DAYS, detect_model_drift, record_check
from cloud.storage import from_iso
from cloud.web.auth import OperatorPage, ViewerPage
from cloud.web.rendering import PageRoute, render
from shared.messages import PredictionType

router = APIRouter(prefix="/drift", route_class=PageRoute, include_in_schema=False)
PAGE = 30
#: the checks the chart draws: the newest this many
CHARTED = 200
MODELS = tuple(kind.value for kind in PredictionType)
#: each statistic a check may store for a feature, and the threshold of ``DriftConfig`` it is judged by
STATISTICS = {"psi": "psi_threshold", "ks_statistic": None, "wasserstein": "wasserstein_threshold"}


def _segments(results: list[dict[str, Any]]) -> list[str]:
    """Every segment the checks have: ``all`` first, then device types."""
    found = {name for result in results for name in result["feature_drift"]["segments"]}
    return sorted(found, key=lambda name: (name != ALL, name))


def _features(result: dict[str, Any], segment: str) -> dict[str, dict[str, Any]]:
    return result["feature_drift"]["segments"].get(segment, {}).get("features", {})


def statistic_chart(results: list[dict[str, Any]], segment: str, feature: str) -> dict[str, Any]:
    """The feature's statistics in the segment at each check's window end, oldest first, with their thresholds:
    what ``/static/charts.js`` draws. Statistics no check has are left out."""
    points = sorted(
        (from_iso(result["window"]["end"]).timestamp(), _features(result, segment).get(feature), result["config"])
        for result in results
        if feature in _features(result, segment)
    )
    series = []
    for name, threshold in STATISTICS.items():
        values = [entry.get(name) for _, entry, _ in points]
        if any(value is not None for value in values):
            series.append({"label": name.replace("_", " "), "values": values})
            if threshold:
                series.append({"label": threshold.replace("_", " "), "values": [c[threshold] for _, _, c in points]})
    return {"x": [at for at, _, _ in points], "y": f"{feature} ({segment})", "series": series}


@router.get("")
def drift(
    request: Request,
    db: Database,
    session: ViewerPage,
    model: PredictionType = PredictionType.COMPONENT_FAILURE,
    segment: str = ALL,
    feature: str = "",
    before: int | None = None,
) -> HTMLResponse:
    connection = connection_of(db)
    charted = stored_monitoring.drift_checks_before(connection, model.value, None, CHARTED)
    results = [json.loads(row["result_json"]) for row in charted]
    latest = results[0] if results else None
    features = _features(latest, segment) if latest else {}
    drifted = [name for name, entry in features.items() if entry.get("status") == "drift"]
    feature = feature if feature in features else (drifted or [*features, ""])[0]
    page = stored_monitoring.drift_checks_before(connection, model.value, before, PAGE)
    context = {
        "model": model.value,
        "models": MODELS,
        "segment": segment,
        "segments": _segments(results) or [ALL],
        "feature": feature,
        "latest": latest,
        "features": features,
        "chart": statistic_chart(results, segment, feature) if feature else None,
        "checks": [{**row, "drifted": json.loads(row["result_json"])["feature_drift"]["drifted"]} for row in page],
        "older": page[-1]["id"] if len(page) == PAGE else None,
        "days": DEFAULT_DAYS,
    }
    return render(request, "drift.html", context)


@router.post("/{model_name}/check")
def check(
    session: OperatorPage,
    db: Database,
    model_name: PredictionType,
    days: Annotated[int, Form(ge=1, le=365)] = DEFAULT_DAYS,
    version: Annotated[str, Form(max_length=50)] = "",
    device_type: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Run the check and record it, as the API's operator route does."""
    result = detect_model_drift(
        db, model_name.value, days=days, device_type=device_type or None, version=version or None
    )
    record_check(db, result, actor=session.key.actor)
    shown = urlencode({"model": model_name.value, "segment": device_type or ALL})
    return RedirectResponse(f"/drift?{shown}", status_code=303)
