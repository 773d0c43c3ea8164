"""Two versions of a model side by side: the held-out evaluation the registry stores for each, and the field
metrics from outcomes as the Monitoring page computes them, each row with both values and their difference.

Field metrics are ``ModelPerformanceMonitor.compute_metrics`` over one bounded period, grouped by version × device
type: the same live computation as the Monitoring page and ``GET /api/monitoring/performance`` (nothing stores it
per version ahead of time), so its cost grows with the model's predictions in the period, every version's.
Label coverage is the Monitoring page's (``cloud.web.pages.monitoring.coverage``), summed over arms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from shared.messages import PredictionType

#: figures where a larger number is the better one; ``LOWER`` the reverse; any other is only told apart
HIGHER = {"precision", "recall", "f1", "roc_auc", "pr_auc", "mean_roc_auc", "mean_pr_auc", "score", "r2"}
LOWER = {"brier", "mae", "mape", "mae_litres", "rmse_litres", "latency p95 (ms)"}


@dataclass(frozen=True)
class Row:
    """One figure of both versions; ``None`` where a version has none."""

    name: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a

    @property
    def change(self) -> str:
        """'better', 'worse' or '' (no difference, no known direction, or a value missing): b against a."""
        leaf = self.name.rsplit(".", 1)[-1]
        if not self.delta or (leaf not in HIGHER and leaf not in LOWER):
            return ""
        return "better" if (self.delta > 0) == (leaf in HIGHER) else "worse"


def numbers(figures: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of nested figures by dotted name (lists and text left out)."""
    flat: dict[str, float] = {}
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= numbers(value, f"{name}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[name] = value
    return flat


def side_by_side(a: dict[str, float | None], b: dict[str, float | None]) -> list[Row]:
    """A row per figure either version has, in a's order then b's."""
    names = list(dict.fromkeys([*a, *b]))
    return [Row(name, a.get(name), b.get(name)) for name in names]


def field_figures(cell: dict[str, Any], prediction_type: str, component: str) -> dict[str, float | None]:
    """What the comparison shows of a monitoring cell: the classification figures of ``component`` (failures) or
    the regression figures (usage), then latency."""
    figures: dict[str, float | None] = {"predictions": cell.get("predictions") or 0}
    if prediction_type == PredictionType.COMPONENT_FAILURE:
        found = (cell.get("classification") or {}).get(component) or {}
        figures |= {f"scored ({component})": found.get("n", 0), "positives": found.get("positives")}
        figures |= {name: found.get(name) for name in ("precision", "recall", "roc_auc", "brier")}
    elif prediction_type == PredictionType.USAGE_PATTERN:
        found = cell.get("regression") or {}
        figures |= {"measured": found.get("n", 0), "mae": found.get("mae"), "mape": found.get("mape")}
    figures["latency p95 (ms)"] = (cell.get("latency_ms") or {}).get("p95")
    return figures


def scored(cell: dict[str, Any], component: str) -> int:
    """How many of a cell's predictions were scored against what happened (0: no field outcome yet)."""
    classification = (cell.get("classification") or {}).get(component) or {}
    return int(classification.get("n") or (cell.get("regression") or {}).get("n") or 0)


def coverage_of(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(predictions, labelled) per version × device type, the monitoring coverage rows summed over arms."""
    summed: dict[tuple[str, str], tuple[int, int]] = {}
    for row in rows:
        key = (row["model_version"], row["device_type"] or "")
        made, labelled = summed.get(key, (0, 0))
        summed[key] = (made + row["predictions"], labelled + row["labelled"])
    return summed


def field_tables(
    computed: dict[str, Any], coverage: list[dict[str, Any]], a: str, b: str, component: str
) -> list[dict[str, Any]]:
    """Per device type either version served: both versions' field figures, their label coverage, and whether
    each has any field outcome yet."""
    by_key = {(cell["model_version"], cell["device_type"] or ""): cell for cell in computed["cells"]}
    covered = coverage_of(coverage)
    device_types = sorted({device_type for version, device_type in by_key if version in (a, b)})
    tables = []
    for device_type in device_types:
        found = {version: by_key.get((version, device_type), {}) for version in (a, b)}
        kind = computed["prediction_type"]
        figures = {version: field_figures(cell, kind, component) for version, cell in found.items()}
        tables.append(
            {
                "device_type": device_type,
                "rows": side_by_side(figures[a], figures[b]),
                "scored": {version: scored(cell, component) for version, cell in found.items()},
                "coverage": {version: covered.get((version, device_type), (0, 0)) for version in (a, b)},
            }
        )
    return tables
