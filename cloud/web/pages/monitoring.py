"""Monitoring: a model's production metrics over time per version × device type × arm, their calibration over the
period, and label coverage (the share of predictions an outcome has labelled, and how long labels took).

The metrics are ``ModelPerformanceMonitor.compute_metrics`` as ``GET /api/monitoring/performance/{model}`` computes
them (a viewer's read): once per series window for the charts, once over the whole period for the table and the
calibration. Label coverage is the ``predictions`` owner's ``label_coverage`` over the same period.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cloud.api.deps import Database, Monitor
from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of
from cloud.monitoring.performance import ANY_FAILURE, GROUP_DIMENSIONS, WHOLE_PERIOD, UnknownModelName, resolve_period
from cloud.monitoring.report import calibration_chart
from cloud.storage import from_iso, iso
from cloud.web.auth import ViewerPage
from cloud.web.rendering import PageRoute, render
from shared.messages import Component, PredictionType

router = APIRouter(prefix="/monitoring", route_class=PageRoute, include_in_schema=False)
MODELS = tuple(kind.value for kind in PredictionType)
PERIODS = ("last_day", "last_week", "last_month")
COMPONENTS = (ANY_FAILURE, *(component.value for component in Component))
#: (title, axis, where a cell keeps the figure) of each chart, by prediction type
CLASSIFICATION = (
    ("Precision at the alert threshold", "precision", ("classification", "precision")),
    ("Recall at the alert threshold", "recall", ("classification", "recall")),
    ("ROC AUC", "ROC AUC", ("classification", "roc_auc")),
    ("Brier score (lower is better)", "Brier score", ("classification", "brier")),
)
REGRESSION = (
    ("Mean absolute error of the predicted litres", "MAE (L)", ("regression", "mae")),
    ("Mean absolute percentage error", "MAPE", ("regression", "mape")),
)
LATENCY = (("Latency, 95th percentile", "ms", ("latency_ms", "p95")),)


def arm_of(cell: dict[str, Any]) -> str:
    """A cell's version × device type × arm, as a series label."""
    return f"v{cell['model_version']} · {cell['device_type'] or 'any type'} · {cell['arm']}"


def figure(cell: dict[str, Any], where: tuple[str, str], component: str) -> float | None:
    """One figure of a cell; classification figures are the component's."""
    part, name = where
    found = cell.get(part) or {}
    if part == "classification":
        found = found.get(component) or {}
    return found.get(name)


def charts(cells: list[dict[str, Any]], kinds: tuple, component: str) -> list[dict[str, Any]]:
    """One time-series chart per figure: a series per version × device type × arm over the windows' starts."""
    times = sorted({cell["window_start"] for cell in cells})
    at = {time: index for index, time in enumerate(times)}
    labels = sorted({arm_of(cell) for cell in cells})
    drawn = []
    for title, axis, where in kinds:
        series = {label: [None] * len(times) for label in labels}
        for cell in cells:
            series[arm_of(cell)][at[cell["window_start"]]] = figure(cell, where, component)
        kept = [
            {"label": label, "values": values} for label, values in series.items() if any(v is not None for v in values)
        ]
        if kept:
            x = [from_iso(time).timestamp() for time in times]
            drawn.append({"title": title, "chart": {"x": x, "y": axis, "series": kept}})
    return drawn


def calibration(cells: list[dict[str, Any]], component: str) -> dict[str, Any] | None:
    """The component's calibration over the whole period, a curve per cell (the report's chart)."""
    curves = {
        arm_of(cell): ((cell.get("classification") or {}).get(component) or {}).get("calibration") for cell in cells
    }
    drawn = {label: bins for label, bins in curves.items() if bins}
    return calibration_chart(drawn) if drawn else None


def coverage(db: Database, model_name: str, start: str, end: str) -> list[dict[str, Any]]:
    """Label coverage per version × device type × arm, delays in hours."""
    rows = stored_predictions.label_coverage(connection_of(db), model_name, start, end)
    hours = 3_600_000
    return [
        {
            "model_version": version,
            "device_type": device_type,
            "arm": arm,
            "predictions": made,
            "labelled": labelled,
            "share": labelled / made if made else None,
            "mean_delay_h": None if mean is None else float(mean) / hours,
            "max_delay_h": None if most is None else float(most) / hours,
        }
        for version, device_type, arm, made, labelled, mean, most in rows
    ]


@router.get("")
def monitoring(
    request: Request,
    db: Database,
    monitor: Monitor,
    session: ViewerPage,
    model: PredictionType = PredictionType.COMPONENT_FAILURE,
    period: str = "last_week",
    component: str = ANY_FAILURE,
    window: str = "",
) -> HTMLResponse:
    start, end, period_window = resolve_period(period)
    window = window or period_window
    context: dict[str, Any] = {
        "model": model.value,
        "models": MODELS,
        "period": period,
        "periods": PERIODS,
        "component": component,
        "components": COMPONENTS if model == PredictionType.COMPONENT_FAILURE else (),
        "start": iso(start),
        "end": iso(end),
        "window": window,
        "coverage": coverage(db, model.value, iso(start), iso(end)),
    }
    try:
        series = monitor.compute_metrics(model.value, start, end, window, GROUP_DIMENSIONS)
        whole = monitor.compute_metrics(model.value, start, end, WHOLE_PERIOD, GROUP_DIMENSIONS)
    except UnknownModelName as exc:
        return render(request, "monitoring.html", context | {"unknown": str(exc), "charts": [], "summary": []})
    kinds = (CLASSIFICATION if model == PredictionType.COMPONENT_FAILURE else REGRESSION) + LATENCY
    context |= {
        "charts": charts(series["cells"], kinds, component),
        "calibration": calibration(whole["cells"], component),
        "summary": whole["cells"],
        "horizon_days": whole["horizon_days"],
    }
    return render(request, "monitoring.html", context)
