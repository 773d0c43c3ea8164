"""ModelPerformanceMonitor: how models do in production, from what actually happened after their predictions.

Metrics are computed per model version × device type × arm × time window (by the prediction's ``made_at``):

- ``component_failure``: per component, a prediction is labelled from that component's outcomes on the same
  heater, by device and time rather than by the ``prediction_id`` link alone (a technician links a finding to
  one prediction, but every prediction in the horizon before a failure should have foreseen it; training labels
  are made the same way). Positive: a ``failed`` or ``replaced`` outcome observed in (made_at, made_at +
  horizon]. Negative: an ``ok`` outcome of that component in that span, or the whole horizon passed with no
  failure. Otherwise the row is censored and left out. The pseudo-component ``any`` scores 1 − P(none) against a
  failure of any component (an ``ok`` of one component says nothing of the others, so only the horizon makes it
  negative). A prediction is alerted at its version's per-component threshold (the training metrics'
  ``thresholds``), else 0.5.
- ``usage_pattern``: MAE and MAPE of the predicted litres against sensor outcomes with a value linked to the
  prediction; MAPE leaves out zero actuals, on which it is undefined.
- every model: ratings of served (not shadow) predictions, latency percentiles, and gateway events (rejects,
  rollbacks, health) per version, which carry no device type or arm.

Rows are pulled with one set-based query each and every statistic comes from numpy or scikit-learn.
"""

from __future__ import annotations

import gc
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import MAXYEAR, UTC, datetime, timedelta
from typing import Any

import numpy as np
import sqlite_utils

from cloud.audit import AuditLog
from cloud.config import configured_actor
from cloud.data import dead_letters as stored_dead_letters
from cloud.data import fleet
from cloud.data import models as stored_models
from cloud.data import monitoring as stored_monitoring
from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid, NotFound
from cloud.storage import from_iso, iso, utc_time
from cloud.training.usage_outputs import LABEL as USAGE_LABEL
from cloud.training.usage_outputs import OUTPUT as USAGE_OUTPUT
from shared.messages import Arm, Component, OutcomeResult, PredictionType

HORIZON = timedelta(days=14)
GROUP_DIMENSIONS = ("model_version", "device_type", "arm")
CALIBRATION_BINS = 10
DEFAULT_THRESHOLD = 0.5
#: 1 − P(none): the probability that some component fails within the horizon
ANY_FAILURE = "any"
NO_FAILURE = "none"
#: one window spanning the whole period
WHOLE_PERIOD = "all"
_WINDOW = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_FAILED = (OutcomeResult.FAILED.value, OutcomeResult.REPLACED.value)
_MAX_METRIC_NAME = 128


class InvalidMetrics(Invalid):
    """A query or tracked point the monitor cannot take: the message says which part and why."""


class UnknownModelName(NotFound, LookupError):
    """No version registered and no prediction stored under this model name."""


def parse_window(window: str, period: timedelta) -> timedelta:
    """``"30m"``, ``"12h"``, ``"1d"``, ``"2w"``, or ``"all"`` (the whole ``period``)."""
    if window == WHOLE_PERIOD:
        return period
    match = _WINDOW.match(window)
    if not match or int(match[1]) == 0:
        raise InvalidMetrics(f"window must look like 30m, 12h, 1d or 2w, or be {WHOLE_PERIOD!r}; got {window!r}")
    try:
        return timedelta(**{_UNITS[match[2]]: int(match[1])})
    except OverflowError:
        raise InvalidMetrics(f"window {window!r} is longer than any period") from None


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


@dataclass(frozen=True)
class _Rows:
    """Per-row dimension codes (indexes into the monitor's vocabularies) and window indexes of one pull."""

    dims: dict[str, np.ndarray]
    window: np.ndarray


class _Vocabulary:
    """Strings → dense integer codes, shared by every pull of one computation so their groups line up."""

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, int]] = {name: {} for name in GROUP_DIMENSIONS}

    def encode(self, name: str, values: Sequence[str]) -> np.ndarray:
        index = self.codes[name]
        return np.fromiter((index.setdefault(v, len(index)) for v in values), dtype=np.int64, count=len(values))

    def names(self, name: str) -> list[str]:
        return list(self.codes[name])


class _Computation:
    """One ``compute_metrics`` call: its period, windows, grouping and the vocabularies its pulls share."""

    def __init__(
        self, model_name: str, start: datetime, end: datetime, window: str, group_by: Sequence[str], as_of: datetime
    ):
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidMetrics("start and end must carry a time zone (UTC)")
        if not start < end:
            raise InvalidMetrics(f"start ({iso(start)}) must come before end ({iso(end)})")
        unknown = [name for name in group_by if name not in GROUP_DIMENSIONS]
        if unknown:
            raise InvalidMetrics(f"group_by takes {', '.join(GROUP_DIMENSIONS)}; not {', '.join(unknown)}")
        self.model_name, self.start, self.end = model_name, start, end
        self.window = parse_window(window, end - start)
        self.group_by = [name for name in GROUP_DIMENSIONS if name in group_by]
        self.start_ms, self.end_ms, self.as_of_ms = _ms(start), _ms(end), _ms(as_of)
        self.window_ms = round(self.window.total_seconds() * 1000)
        self.windows = -(-(self.end_ms - self.start_ms) // self.window_ms)
        self.vocabulary = _Vocabulary()
        #: [start, end) as stored times
        self.period = (iso(start), iso(end))

    def rows(self, columns: list[Sequence], made_at_ms: Sequence[int]) -> _Rows:
        """Codes of (model_version, device_type, arm) columns and the window index of each row."""
        dims = {name: self.vocabulary.encode(name, col) for name, col in zip(GROUP_DIMENSIONS, columns, strict=True)}
        window = (np.asarray(made_at_ms, dtype=np.int64) - self.start_ms) // self.window_ms
        # SQL keeps rows in [start, end) by their microsecond text; rounding to milliseconds can put a row made
        # within half a millisecond of either bound onto it, one window outside
        return _Rows(dims, np.clip(window, 0, self.windows - 1))

    def combos(self, rows: _Rows) -> np.ndarray:
        """One integer per (grouped dimensions, window) cell, comparable across pulls of this computation.

        The predictions pull comes first and every later one is a join onto those predictions, so it meets no new
        version, device type or arm and the sizes (hence every combo) stay as they were.
        """
        sizes = [max(len(self.vocabulary.codes[name]), 1) for name in self.group_by] + [self.windows]
        return np.ravel_multi_index([rows.dims[name] for name in self.group_by] + [rows.window], sizes)

    def describe(self, combo: int) -> dict:
        sizes = [max(len(self.vocabulary.codes[name]), 1) for name in self.group_by] + [self.windows]
        *codes, window = np.unravel_index(combo, sizes)
        cell: dict = dict.fromkeys(GROUP_DIMENSIONS)
        for name, code in zip(self.group_by, codes, strict=True):
            cell[name] = self.vocabulary.names(name)[int(code)]
        begins = self.start + self.window * int(window)
        cell["window_start"] = iso(begins)
        cell["window_end"] = iso(min(begins + self.window, self.end))
        return cell


def _columns(pull: Callable[[], Sequence[Sequence]]) -> list[tuple]:
    """The rows ``pull`` fetches, as columns ([] for no rows).

    The cyclic garbage collector is paused meanwhile: a million fresh rows (which form no cycles) set off its full
    passes again and again, a quarter of the time of a large computation.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return list(zip(*pull(), strict=True))
    finally:
        if was_enabled:
            gc.enable()


class _Cells:
    """Rows grouped into cells: each row's cell, and each cell's combo; figures for every cell at once."""

    def __init__(self, combos: np.ndarray):
        self.combos, self.of_row = np.unique(combos, return_inverse=True)
        self.size = self.combos.size

    def count(self, of_row: np.ndarray, weights: np.ndarray | None = None, slots: int = 1) -> np.ndarray:
        """Sums per cell, or per (cell, slot) as a (cells, slots) array when ``of_row`` is spread over slots."""
        sums = np.bincount(of_row, weights, minlength=self.size * slots)
        return sums if slots == 1 else sums.reshape(self.size, slots)

    def members(self) -> list[np.ndarray]:
        """Each cell's row indexes, from one stable sort."""
        order = np.argsort(self.of_row, kind="stable")
        return np.split(order, np.cumsum(np.bincount(self.of_row, minlength=self.size))[:-1])


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (scikit-learn's ``zero_division=0``)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _classification(cells: _Cells, usable: np.ndarray, y: np.ndarray, proba: np.ndarray, alerted: np.ndarray) -> list:
    """Per cell: precision, recall, F1 at the alert threshold; ROC AUC, Brier score and calibration bins.

    Every figure is computed for all cells at once (a call per cell cost ~3 ms of scikit-learn's input checks, 15 s
    for a day-by-day month of 8 groups and 6 components): counts, rates and means with ``np.bincount``, ROC AUC
    as the Mann–Whitney U statistic over n₁·n₀ from scipy's tie-averaged ranks, each cell offset by 2 so no tie
    crosses cells. The tests check each against scikit-learn's ``precision_recall_fscore_support``,
    ``roc_auc_score``, ``brier_score_loss`` and ``calibration_curve``. None for a cell without rows.
    """
    from scipy.stats import rankdata  # here, not at import: `monitor --help` should not load scipy

    of, y, p, alerted = cells.of_row[usable], y[usable], proba[usable], alerted[usable]
    confusion = cells.count(of * 4 + y * 2 + alerted, slots=4)  # slots: (y, alerted) = 00, 01, 10, 11
    tn, fp, fn, tp = confusion.T
    n = confusion.sum(axis=1)
    precision, recall, f1 = _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)
    brier = _ratio(cells.count(of, (p - y) ** 2), n)
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    slot = of * CALIBRATION_BINS + np.searchsorted(edges[1:-1], p)  # calibration_curve's uniform binning
    in_bin = cells.count(slot, slots=CALIBRATION_BINS)
    expected = _ratio(cells.count(slot, p, CALIBRATION_BINS), in_bin)
    observed = _ratio(cells.count(slot, y.astype(np.float64), CALIBRATION_BINS), in_bin)
    negatives, positives = n - tp - fn, tp + fn
    before = np.cumsum(n) - n  # rows of earlier cells: a global rank minus this is the rank within the cell
    rank_sum = cells.count(of[y == 1], (rankdata(of * 2.0 + p) - before[of])[y == 1])
    roc_auc = _ratio(rank_sum - positives * (positives + 1) / 2, positives * negatives)
    figures: list[dict | None] = []
    for c in range(cells.size):
        if not n[c]:
            figures.append(None)
            continue
        figures.append(
            {
                "n": int(n[c]),
                "positives": int(tp[c] + fn[c]),
                "alerts": int(tp[c] + fp[c]),
                "precision": float(precision[c]),
                "recall": float(recall[c]),
                "f1": float(f1[c]),
                "roc_auc": float(roc_auc[c]) if positives[c] and negatives[c] else None,
                "brier": float(brier[c]),
                "calibration": [
                    {
                        "bin_low": round(float(edges[b]), 6),
                        "bin_high": round(float(edges[b + 1]), 6),
                        "expected": float(expected[c, b]),
                        "observed": float(observed[c, b]),
                        "n": int(in_bin[c, b]),
                    }
                    for b in np.flatnonzero(in_bin[c])
                ],
            }
        )
    return figures


def _latency(cells: _Cells, latency: np.ndarray) -> list[dict]:
    figures = []
    for members in cells.members():
        values = latency[members]
        values = values[np.isfinite(values)]
        if not values.size:
            figures.append({"n": 0, "mean": None, "p50": None, "p95": None, "p99": None})
            continue
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        figures.append(
            {
                "n": int(values.size),
                "mean": float(values.mean()),
                "p50": float(p50),
                "p95": float(p95),
                "p99": float(p99),
            }
        )
    return figures


def _regression(cells: _Cells, predicted: np.ndarray, actual: np.ndarray) -> list[dict | None]:
    """MAE, and MAPE over non-zero actuals (as scikit-learn's, which divides by max(|actual|, eps))."""
    usable = np.isfinite(predicted) & np.isfinite(actual)
    of, error = cells.of_row[usable], np.abs(predicted[usable] - actual[usable])
    nonzero = actual[usable] != 0
    n, n_mape = cells.count(of), cells.count(of[nonzero])
    mae = _ratio(cells.count(of, error), n)
    mape = _ratio(cells.count(of[nonzero], error[nonzero] / np.abs(actual[usable][nonzero])), n_mape)
    return [
        {"n": int(n[c]), "mae": float(mae[c]), "mape": float(mape[c]) if n_mape[c] else None, "n_mape": int(n_mape[c])}
        if n[c]
        else None
        for c in range(cells.size)
    ]


def _ratings(cells: _Cells, ratings: np.ndarray) -> list[dict]:
    distribution = cells.count(cells.of_row * 5 + (ratings - 1), slots=5)
    n = distribution.sum(axis=1)
    mean = _ratio(distribution @ np.arange(1, 6), n)
    low = _ratio(distribution[:, :2].sum(axis=1), n)
    return [
        {
            "n": int(n[c]),
            "mean": float(mean[c]),
            "distribution": {str(r): int(distribution[c, r - 1]) for r in range(1, 6)},
            "share_low": float(low[c]),
        }
        for c in range(cells.size)
    ]


def alert_thresholds(metrics_json: str | None) -> dict[str, float]:
    """Per-component alert thresholds from a version's metrics: training-time ones, else the holdout's."""
    metrics = json.loads(metrics_json or "{}")
    found = dict(metrics.get("thresholds") or {})
    for name, entry in ((metrics.get("holdout") or {}).get("per_component") or {}).items():
        if isinstance(entry, dict) and "threshold" in entry:
            found.setdefault(name, entry["threshold"])
    return {name: float(value) for name, value in found.items()}


class ModelPerformanceMonitor:
    """Metric time series (tracked and computed) and performance computed from outcomes, over the storage layer."""

    def __init__(self, db: sqlite_utils.Database, horizon: timedelta = HORIZON):
        self.db = db
        self.horizon = horizon

    # ---- tracked time series -------------------------------------------------------------------------------

    def track_prediction_metrics(
        self,
        prediction_type: PredictionType | str,
        metrics: Mapping[str, float],
        timestamp: str | datetime,
        model_version: str | None = None,
        device_type: str | None = None,
        arm: Arm | str | None = None,
        *,
        model_name: str | None = None,
        window: str | None = None,
        actor: str | None = None,
    ) -> int:
        """Store one point per metric at ``timestamp``; a point tracked again replaces its value. Returns the count.

        The model name defaults to the prediction type (each type is a registered model name). Every value must be
        a finite number, or nothing is stored. Audited as ``actor`` in the same transaction. ``timestamp`` may be
        ISO-8601 text (UTC without an offset); a datetime must carry its time zone.
        """
        if isinstance(timestamp, str):
            timestamp = utc_time(timestamp, "timestamp")
        with write_transaction(self.db):
            stored = self._write_points(
                prediction_type, metrics, timestamp, model_version, device_type, arm, model_name, window, "tracked"
            )
            details = {"points": stored, "at": iso(timestamp), "model_version": model_version or ""}
            target = model_name or PredictionType(prediction_type).value
            AuditLog(self.db).record(actor or configured_actor(), "monitoring.track", target, details)
        return stored

    def _write_points(
        self,
        prediction_type: PredictionType | str,
        metrics: Mapping[str, float],
        timestamp: datetime,
        model_version: str | None,
        device_type: str | None,
        arm: Arm | str | None,
        model_name: str | None,
        window: str | None,
        source: str,
    ) -> int:
        """Validate and upsert the points of one series (the caller audits)."""
        try:
            kind, arm = PredictionType(prediction_type).value, Arm(arm).value if arm else ""
        except ValueError as exc:
            raise InvalidMetrics(str(exc)) from exc
        if timestamp.tzinfo is None:
            raise InvalidMetrics("timestamp must carry a time zone (UTC)")
        if not metrics:
            raise InvalidMetrics("no metrics given")
        for name, value in metrics.items():
            if not isinstance(name, str) or not 0 < len(name) <= _MAX_METRIC_NAME:
                raise InvalidMetrics(f"metric names are 1–{_MAX_METRIC_NAME} characters; got {name!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InvalidMetrics(f"metric {name!r} must be a finite number, not {value!r}")
        series = {
            "model_name": model_name or kind,
            "prediction_type": kind,
            "model_version": model_version or "",
            "device_type": device_type or "",
            "arm": arm,
            "window": window or "",
        }
        stamps = {"at": iso(timestamp), "source": source, "recorded_at": iso(datetime.now(UTC))}
        points = [{**series, "metric": name, "value": float(value), **stamps} for name, value in metrics.items()]
        with write_transaction(self.db) as connection:
            stored_monitoring.put_metric_points(connection, points)
        return len(points)

    def metric_points(
        self,
        model_name: str | None = None,
        prediction_type: str | None = None,
        metric: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        model_version: str | None = None,
        device_type: str | None = None,
        arm: str | None = None,
        source: str | None = None,
        limit: int = 10_000,
    ) -> list[dict]:
        """Stored points, oldest first; each filter given narrows the series ('' matches points not split by it)."""
        given = {
            "model_name": model_name,
            "prediction_type": prediction_type,
            "metric": metric,
            "model_version": model_version,
            "device_type": device_type,
            "arm": arm,
            "source": source,
        }
        equal = {column: value for column, value in given.items() if value is not None}
        found = stored_monitoring.find_metric_points(
            connection_of(self.db),
            equal,
            None if start is None else iso(start),
            None if end is None else iso(end),
            limit,
        )
        return [dict(point) for point in found]

    # ---- computed from outcomes ----------------------------------------------------------------------------

    def prediction_type_of(self, model_name: str) -> PredictionType:
        """The model's prediction type, from its registered versions or else its stored predictions."""
        connection = connection_of(self.db)
        for prediction_type_of in (stored_models.prediction_type_of, stored_predictions.prediction_type_of_model):
            found = prediction_type_of(connection, model_name)
            if found:
                return PredictionType(found)
        raise UnknownModelName(f"unknown model {model_name!r}: no version registered and no prediction stored")

    def compute_metrics(
        self,
        model_name: str,
        start: datetime,
        end: datetime,
        window: str = "1d",
        group_by: Iterable[str] = GROUP_DIMENSIONS,
        *,
        as_of: datetime | None = None,
        store: bool = False,
        actor: str | None = None,
    ) -> dict:
        """Metrics of predictions made in [start, end), per cell of the grouped dimensions × window.

        ``as_of`` (default now) decides whose horizon has passed. With ``store``, every figure is also written as
        a metric point (source ``computed``) at its window's start, so dashboards read one time series; storing
        is audited as ``actor``.
        """
        prediction_type = self.prediction_type_of(model_name)
        run = _Computation(model_name, start, end, window, list(group_by), as_of or datetime.now(UTC))
        cells: dict[int, dict] = {}

        def cell(combo: int) -> dict:
            return cells.setdefault(combo, run.describe(combo))

        self._predictions(run, prediction_type, cell)
        if prediction_type == PredictionType.USAGE_PATTERN:
            self._usage(run, cell)
        self._feedback(run, cell)
        result = {
            "model_name": model_name,
            "prediction_type": prediction_type.value,
            "start": iso(start),
            "end": iso(end),
            "window": window,
            "group_by": run.group_by,
            "horizon_days": self.horizon.total_seconds() / 86400,
            "cells": [cells[combo] for combo in sorted(cells)],
            "errors": self._events(run),
            "dead_letters": stored_dead_letters.count_received(connection_of(self.db), *run.period),
        }
        if store:
            self.store_computed(result, actor=actor)
        return result

    def _predictions(self, run: _Computation, prediction_type: PredictionType, cell) -> None:
        """Prediction counts and latency per cell; classification for ``component_failure``."""
        classes = [NO_FAILURE, *(c.value for c in Component)]
        outputs = classes if prediction_type == PredictionType.COMPONENT_FAILURE else []
        pulled = self._pull(run, stored_predictions.made_in_period, outputs)
        if pulled is None:
            return
        rows, cells, columns = pulled
        latency = _latency(cells, np.asarray(columns[2], dtype=np.float64))
        counts = cells.count(cells.of_row)
        for c, combo in enumerate(cells.combos):
            cell(int(combo)).update(predictions=int(counts[c]), latency_ms=latency[c])
        if prediction_type == PredictionType.COMPONENT_FAILURE:
            proba = {name: np.asarray(col, dtype=np.float64) for name, col in zip(classes, columns[3:], strict=True)}
            self._classify(run, rows, columns[1], np.asarray(columns[0], dtype=np.int64), proba, cells, cell)

    def _classify(
        self,
        run: _Computation,
        rows: _Rows,
        device_ids: Sequence[str],
        made_at: np.ndarray,
        proba: dict[str, np.ndarray],
        cells: _Cells,
        cell,
    ) -> None:
        devices: dict[str, int] = {}
        device = np.fromiter((devices.setdefault(d, len(devices)) for d in device_ids), np.int64, len(device_ids))
        horizon_ms = round(self.horizon.total_seconds() * 1000)
        connection = connection_of(self.db)
        found = _columns(
            lambda: stored_predictions.findings_observed(connection, iso(run.start), iso(run.end + self.horizon))
        )
        columns = found or [()] * 4
        # -1: a heater without a prediction in the period, whose outcomes label nothing
        o_device = np.fromiter((devices.get(d, -1) for d in columns[0]), np.int64, len(columns[0]))
        o_time = np.asarray(columns[1], dtype=np.int64)
        o_component, o_result = np.asarray(columns[2], dtype=str), np.asarray(columns[3], dtype=str)
        o_failed = (o_device >= 0) & np.isin(o_result, _FAILED)
        o_ok = (o_device >= 0) & (o_result == OutcomeResult.OK.value)
        # (device, time) as one sortable key: outcomes of a device in a span are one searchsorted range
        span = run.end_ms + horizon_ms - run.start_ms + 2
        o_key = o_device * span + (o_time - run.start_ms)
        low = device * span + (made_at - run.start_ms)
        order = np.argsort(low)  # searchsorted runs several times faster on sorted queries
        low = low[order]

        def seen(mask: np.ndarray) -> np.ndarray:
            keys = np.sort(o_key[mask])
            found = np.empty(low.size, dtype=bool)
            found[order] = np.searchsorted(keys, low + horizon_ms, "right") > np.searchsorted(keys, low, "right")
            return found

        horizon_passed = made_at + horizon_ms <= run.as_of_ms
        version_names = run.vocabulary.names("model_version")
        thresholds = {
            version: alert_thresholds(stored_models.metrics_json(connection, run.model_name, version))
            for version in version_names
        }
        figures = {}
        for name in (ANY_FAILURE, *(c.value for c in Component)):
            if name == ANY_FAILURE:
                probability = 1.0 - proba[NO_FAILURE]
                positive = seen(o_failed)
                labelled = positive | horizon_passed
            else:
                probability = proba[name]
                positive = seen(o_failed & (o_component == name))
                labelled = positive | horizon_passed | seen(o_ok & (o_component == name))
            cut = np.array([thresholds[v].get(name, DEFAULT_THRESHOLD) for v in version_names])
            alerted = probability >= cut[rows.dims["model_version"]]
            usable = labelled & np.isfinite(probability)
            figures[name] = _classification(
                cells, usable, positive.astype(np.int64), np.clip(probability, 0, 1), alerted.astype(np.int64)
            )
        for c, combo in enumerate(cells.combos):
            found = {name: per_cell[c] for name, per_cell in figures.items() if per_cell[c] is not None}
            cell(int(combo))["classification"] = found

    def _pull(self, run: _Computation, pull: Callable, *given: Any) -> tuple[_Rows, _Cells, list[Sequence]] | None:
        """Run ``pull(connection, model_name, start, end, *given)``, a predictions owner's pull of ``run``'s period
        whose columns start with version, device type, arm and made_at (ms): its rows' codes, their cells, and all
        its columns from made_at on; None when it finds nothing."""
        connection = connection_of(self.db)
        columns = _columns(lambda: pull(connection, run.model_name, *run.period, *given))
        if not columns:
            return None
        rows = run.rows(columns[:3], columns[3])
        return rows, _Cells(run.combos(rows)), columns[3:]

    def _usage(self, run: _Computation, cell) -> None:
        pulled = self._pull(run, stored_predictions.measured_usage, [USAGE_LABEL, USAGE_OUTPUT])
        if pulled is None:
            return
        _rows, cells, columns = pulled
        figures = _regression(cells, np.asarray(columns[1], dtype=np.float64), np.asarray(columns[2], dtype=np.float64))
        for combo, found in zip(cells.combos, figures, strict=True):
            if found is not None:
                cell(int(combo))["regression"] = found

    def _feedback(self, run: _Computation, cell) -> None:
        pulled = self._pull(run, stored_predictions.served_ratings)
        if pulled is None:
            return
        _rows, cells, columns = pulled
        for combo, found in zip(cells.combos, _ratings(cells, np.asarray(columns[1], dtype=np.int64)), strict=True):
            cell(int(combo))["ratings"] = found

    def _events(self, run: _Computation) -> list[dict]:
        """Gateway events of this model per version and window, counted by kind (events name no device or arm)."""
        found = fleet.model_event_counts(
            connection_of(self.db), run.model_name, *run.period, run.start_ms, run.window_ms
        )
        errors: dict[tuple[str, int], dict] = {}
        for version, w, kind, count in found:
            begins = run.start + run.window * w
            entry = errors.setdefault(
                (version or "", w),
                {
                    "model_version": version,
                    "window_start": iso(begins),
                    "window_end": iso(min(begins + run.window, run.end)),
                    "events": {},
                },
            )
            entry["events"][kind] = count
        return list(errors.values())

    def store_computed(self, result: dict, *, actor: str | None = None) -> int:
        """Write every figure of a ``compute_metrics`` result as metric points at its window's start: one
        transaction and one audit entry."""
        stored = 0
        with write_transaction(self.db):
            for found in result["cells"]:
                flat = _flatten(found, ("latency_ms", "regression", "ratings"))
                metrics = {"predictions": found["predictions"], **flat}
                for component, figures in found.get("classification", {}).items():
                    metrics |= {f"classification.{component}.{k}": v for k, v in _flatten_one(figures).items()}
                stored += self._store_points(result, found, metrics)
            for entry in result["errors"]:
                metrics = {f"events.{kind}": count for kind, count in entry["events"].items()}
                stored += self._store_points(result, {**entry, "device_type": None, "arm": None}, metrics)
            details = {"points": stored, "start": result["start"], "end": result["end"], "window": result["window"]}
            AuditLog(self.db).record(actor or configured_actor(), "monitoring.compute", result["model_name"], details)
        return stored

    def _store_points(self, result: dict, found: dict, metrics: dict) -> int:
        finite = {name: value for name, value in metrics.items() if value is not None and math.isfinite(value)}
        if not finite:
            return 0
        return self._write_points(
            result["prediction_type"],
            finite,
            from_iso(found["window_start"]),
            found["model_version"],
            found["device_type"],
            found["arm"],
            result["model_name"],
            result["window"],
            "computed",
        )

    # ---- the plan's other two methods, kept where the plan names them ----------------------------------------

    def detect_model_drift(self, model_name: str, **options: Any) -> dict:
        """Feature, data-quality and performance drift of a version (``cloud.monitoring.drift.detect_model_drift``)."""
        from cloud.monitoring.drift import detect_model_drift

        return detect_model_drift(self.db, model_name, **options)

    def generate_performance_report(self, model_name: str | None = None, time_period: str = "last_month") -> dict:
        """The JSON report (``generate_performance_report``; ``cloud.monitoring.report.render_html`` turns it into a
        self-contained page)."""
        return generate_performance_report(self.db, model_name, time_period)


def _flatten_one(figures: dict) -> dict[str, float]:
    """The numeric figures of one metric group; ``distribution`` becomes ``distribution.N``, lists are left out."""
    flat = {}
    for key, value in figures.items():
        if isinstance(value, dict):
            flat |= {f"{key}.{k}": v for k, v in value.items()}
        elif isinstance(value, int | float) and not isinstance(value, bool):
            flat[key] = value
    return flat


def _flatten(found: dict, groups: tuple[str, ...]) -> dict[str, float]:
    return {f"{group}.{k}": v for group in groups if group in found for k, v in _flatten_one(found[group]).items()}


# ---- the report's figures over a named period (``cloud.monitoring.report`` renders them as HTML) ----------

#: named periods: how far back from now, and the window of the report's time series
PERIODS: dict[str, tuple[timedelta, str]] = {
    "last_day": (timedelta(days=1), "1h"),
    "last_week": (timedelta(days=7), "1d"),
    "last_month": (timedelta(days=30), "1d"),
}
_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.\.(\d{4}-\d{2}-\d{2})$")


def resolve_period(time_period: str, now: datetime | None = None) -> tuple[datetime, datetime, str]:
    """(start, end, series window) of ``last_day``, ``last_week``, ``last_month`` or ``YYYY-MM-DD..YYYY-MM-DD``.

    A date range covers both days, whole (end exclusive at the next midnight UTC).
    """
    now = now or datetime.now(UTC)
    if time_period in PERIODS:
        span, window = PERIODS[time_period]
        return now - span, now, window
    match = _RANGE.match(time_period)
    if not match:
        raise InvalidMetrics(
            f"time_period must be one of {', '.join(PERIODS)} or YYYY-MM-DD..YYYY-MM-DD; got {time_period!r}"
        )
    try:
        start, last = (datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC) for day in match.groups())
    except ValueError as exc:
        raise InvalidMetrics(f"time_period {time_period!r}: {exc}") from exc
    if last < start:
        raise InvalidMetrics(f"time_period {time_period!r} ends before it starts")
    if last.year == MAXYEAR:
        raise InvalidMetrics(f"time_period {time_period!r} ends too late")  # its end, the next midnight, is no date
    end = last + timedelta(days=1)
    days = (end - start).days
    return start, end, "1h" if days <= 2 else "1d" if days <= 120 else "7d"


def _baseline(db: sqlite_utils.Database, model_name: str, versions: set[str]) -> dict[str, dict]:
    """Each version's training-time holdout evaluation, its scalar figures only (the yardstick for production)."""
    baseline = {}
    connection = connection_of(db)
    for version in sorted(versions):
        holdout = json.loads(stored_models.metrics_json(connection, model_name, version) or "{}").get("holdout", {})
        baseline[version] = {k: v for k, v in holdout.items() if isinstance(v, int | float | str) or v is None}
    return baseline


def generate_performance_report(
    db: sqlite_utils.Database,
    model_name: str | None = None,
    time_period: str = "last_month",
    *,
    now: datetime | None = None,
) -> dict:
    """Every model with predictions in the period (or ``model_name``): figures per version and arm over the whole
    period, the same per version and window as a time series, events, the versions' holdout baselines and the
    points tracked with ``track_prediction_metrics``."""
    now = now or datetime.now(UTC)
    start, end, window = resolve_period(time_period, now)
    monitor = ModelPerformanceMonitor(db)
    if model_name is not None:
        monitor.prediction_type_of(model_name)  # UnknownModelName for a name nothing knows
        names = [model_name]
    else:
        names = stored_predictions.models_made_in(connection_of(db), iso(start), iso(end))
    models = []
    for name in names:
        summary = monitor.compute_metrics(name, start, end, WHOLE_PERIOD, ("model_version", "arm"), as_of=now)
        series = monitor.compute_metrics(name, start, end, window, ("model_version",), as_of=now)
        models.append(
            {
                "model_name": name,
                "prediction_type": summary["prediction_type"],
                "summary": summary["cells"],
                "series": series["cells"],
                "errors": summary["errors"],
                "baseline": _baseline(db, name, {cell["model_version"] for cell in summary["cells"]}),
                "tracked": monitor.metric_points(model_name=name, start=start, end=end, source="tracked"),
            }
        )
    return {
        "generated_at": iso(now),
        "time_period": time_period,
        "start": iso(start),
        "end": iso(end),
        "window": window,
        "horizon_days": monitor.horizon.total_seconds() / 86400,
        "dead_letters": stored_dead_letters.count_received(connection_of(db), iso(start), iso(end)),
        "models": models,
    }
