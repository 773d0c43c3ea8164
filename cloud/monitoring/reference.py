"""The training reference of a model version: per-feature summaries stored once, when the version is trained.

Drift checks compare each window against this document and never go back to the training rows, so a check
costs the same whatever the training set's size, and a reference cannot change after the version shipped.

Each feature gets a kind, decided once on all training rows and kept for every device-type segment so the
segments compare like with like:

- ``categorical``: at most ``MAX_CATEGORIES`` distinct values (flags, counts that are nearly always 0): the
  values and their counts.
- ``binned``: counts per day (a heater's cycles, draws, error minutes) or a value one number dominates (at least
  ``TIED_SHARE`` of the rows, e.g. coverage at 1.0): deciles as cut points and the counts between them. Ties make
  a KS p-value meaningless, so these are judged by PSI.
- ``continuous``: everything else: a sketch of ``SKETCH_SIZE`` order statistics for KS and Wasserstein.

Count features (``COUNT_UNITS``) also get the sketch, whatever their kind: their drift effect size is the
Wasserstein distance in standard deviations (``docs/drift.md``: PSI on deciles misses a 10 % rise in a count).

The sketch holds the reference's ``inverted_cdf`` quantiles at probabilities (i + 0.5) / K, order statistics of
the rows themselves: its step CDF is within 0.5 / K of the n training rows' empirical CDF at every point, ties
included (``sketch_error`` adds 1 / n for the quantile's float arithmetic), so a KS statistic against it is that
close (0.0025 + 1 / n at K = 200) to ``scipy.stats.ks_2samp`` against all training rows. That holds only if each
stored point is the very float32 value of the rows it stands for: clustered float32 values (a duty cycle is
whole minutes over whole minutes) tie, and a point a rounding error away from its tie lands on the other side
of every row of it (7 significant digits gave D = 0.13 on a reference's own rows). Feature values are therefore
stored with ``FLOAT32_DIGITS`` digits and read back through float32 (``stored_values``). Every summary also
keeps the missing rate, observed min and max and a few quantiles (for data-quality checks and the dashboard),
and ``effective_rows``: what its rows are worth as independent draws, the rows of one heater being alike
(``drift_stats.effective_rows``); the drift tests count that, not the rows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import sqlite_utils

from cloud.data import fleet
from cloud.data import monitoring as stored_monitoring
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import NotFound
from cloud.monitoring.drift_stats import effective_rows
from cloud.storage import iso
from cloud.training.data import LabelledRows
from shared.features import FEATURES

#: 2: values stored exactly as float32 (``FLOAT32_DIGITS``), count features sketched
FORMAT = 2
#: order statistics kept per continuous feature (see ``sketch_error``)
SKETCH_SIZE = 200
#: a feature with at most this many distinct values is categorical
MAX_CATEGORIES = 12
#: a feature whose most common value holds this share of the rows is binned, not continuous
TIED_SHARE = 0.2
#: quantile cut points of a binned feature (deciles)
BIN_PROBABILITIES = np.linspace(0.1, 0.9, 9)
#: quantiles reported with every feature
SUMMARY_PROBABILITIES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: a device type needs this many training rows to get a segment of its own (else the all-rows reference serves)
MIN_SEGMENT_ROWS = 500
#: units of shared.features that count events per day: binned whatever their spread
COUNT_UNITS = frozenset({"per 24 h", "min per 24 h"})
_UNITS = {feature.name: feature.unit for feature in FEATURES}


#: significant digits that identify every float32 (IEEE 754's round-trip count for binary32): a 9-digit decimal
#: is within 5e-9 (relative) of its float32, far inside the half-step (3e-8) that rounds it back to it
FLOAT32_DIGITS = 9


def _number(value: float, digits: int = FLOAT32_DIGITS) -> float:
    """``value`` with ``digits`` significant digits: by default the exact float32 once read back through float32."""
    return float(f"{float(value):.{digits}g}")


def _numbers(values: np.ndarray) -> list[float]:
    return [_number(v) for v in np.asarray(values, dtype=np.float64).tolist()]


def stored_values(numbers: list[float]) -> np.ndarray:
    """The float32 values a stored list of feature values stands for, as float64 for arithmetic: equal to the
    rows' own values (float32 in the feature store) wherever they tie."""
    return np.asarray(numbers, np.float32).astype(np.float64)


def sketch_of(present: np.ndarray) -> list[float]:
    """The stored sketch of float32 values: their ``inverted_cdf`` quantiles at (i + 0.5) / ``SKETCH_SIZE``, order
    statistics of the values themselves (module doc), as ``FLOAT32_DIGITS``-digit numbers."""
    probabilities = (np.arange(SKETCH_SIZE) + 0.5) / SKETCH_SIZE
    return _numbers(np.quantile(np.asarray(present, np.float64), probabilities, method="inverted_cdf"))


def is_count(name: str) -> bool:
    """A feature counting events per day (its unit in ``shared.features``)."""
    return _UNITS.get(name) in COUNT_UNITS


def sketch_error(sketch_size: int, reference_rows: int) -> float:
    """The most a sketch's step CDF can differ from its reference rows' empirical CDF (module doc)."""
    return 0.5 / sketch_size + 1 / reference_rows


def feature_kind(name: str, present: np.ndarray) -> str:
    """``categorical``, ``binned`` or ``continuous`` (see the module doc); ``empty`` with no value at all."""
    if not present.size:
        return "empty"
    distinct, counts = np.unique(present, return_counts=True)
    if distinct.size <= MAX_CATEGORIES:
        return "categorical"
    if is_count(name) or counts.max() >= TIED_SHARE * present.size:
        return "binned"
    return "continuous"


def bin_index(cuts: list[float], values: np.ndarray) -> np.ndarray:
    """Bin of each value: 0 below the first cut, i for [cut[i-1], cut[i]), len(cuts) from the last cut on.

    Compared as float32, the features' own precision, so a value equal to a cut falls on the same side in the
    reference and in every check.
    """
    return np.searchsorted(np.asarray(cuts, np.float32), np.asarray(values, np.float32), side="right")


def category_index(categories: list[float], values: np.ndarray) -> np.ndarray:
    """Index of each value among ``categories`` (compared as float32); ``len(categories)`` for a value the
    reference never saw."""
    known, values = np.asarray(categories, np.float32), np.asarray(values, np.float32)
    at = np.minimum(np.searchsorted(known, values), known.size - 1)
    return np.where(known[at] == values, at, known.size)


def _summary(name: str, column: np.ndarray, devices: np.ndarray, kind: str, layout: dict | None) -> dict:
    """One feature of one segment; ``layout`` (the all-rows cuts or categories) is reused by segments;
    ``devices`` (a device index per row) gives what the rows are worth as independent draws."""
    has_value = ~np.isnan(column)
    present = column[has_value].astype(np.float64)
    out: dict = {"kind": kind, "count": int(present.size), "missing_rate": _number(1 - present.size / column.size)}
    if not present.size:
        return out
    out.update(
        effective_rows=_number(effective_rows(present, devices[has_value]), 4),
        min=_number(present.min()),
        max=_number(present.max()),
        mean=_number(present.mean()),
        std=_number(present.std()),
        quantiles=dict(
            zip(map(str, SUMMARY_PROBABILITIES), _numbers(np.quantile(present, SUMMARY_PROBABILITIES)), strict=True)
        ),
    )
    if kind == "categorical":
        out["categories"] = layout["categories"] if layout else _numbers(np.unique(present))
        counts = np.bincount(category_index(out["categories"], present), minlength=len(out["categories"]) + 1)
        out["counts"] = counts[:-1].tolist()
    elif kind == "binned":
        out["cuts"] = layout["cuts"] if layout else _numbers(np.unique(np.quantile(present, BIN_PROBABILITIES)))
        out["counts"] = np.bincount(bin_index(out["cuts"], present), minlength=len(out["cuts"]) + 1).tolist()
    if kind == "continuous" or is_count(name):
        out["sketch"] = sketch_of(present)
        out["spread"] = _number(_spread(present, kind))
    return out


def _spread(present: np.ndarray, kind: str) -> float:
    """The scale Wasserstein distances are divided by. Continuous: a robust sigma (IQR / 1.349), the std if the
    IQR is 0. Counts: the std, a count's own noise (sqrt of its mean for Poisson draws), where the IQR moves in
    whole steps. 1 when there is no spread at all."""
    if kind == "continuous":
        iqr = float(np.subtract(*np.quantile(present, [0.75, 0.25])))
        if iqr > 0:
            return iqr / 1.349
    return float(present.std()) or 1.0


def _segment(
    values: np.ndarray, devices: np.ndarray, names: list[str], kinds: dict[str, str], layouts: dict[str, dict] | None
) -> dict:
    return {
        "rows": int(values.shape[0]),
        "features": {
            name: _summary(name, values[:, i], devices, kinds[name], layouts[name] if layouts else None)
            for i, name in enumerate(names)
        },
    }


def build_reference(rows: LabelledRows, device_types: dict[str, str] | None = None) -> dict:
    """The JSON-ready reference of ``rows`` (the rows a version was trained on), with a segment per device type
    that has at least ``MIN_SEGMENT_ROWS`` rows (``device_types``: device id → type; unknown devices count only in
    the all-rows part)."""
    names = list(rows.feature_names)
    values = np.asarray(rows.values, dtype=np.float32)
    kinds = {name: feature_kind(name, values[~np.isnan(values[:, i]), i]) for i, name in enumerate(names)}
    _, devices = np.unique(np.asarray(rows.device_ids), return_inverse=True)
    overall = _segment(values, devices, names, kinds, None)
    segments = {}
    if device_types and len(rows):
        types = np.array([device_types.get(device, "") for device in np.asarray(rows.device_ids).tolist()])
        kinds_of, counts = np.unique(types[types != ""], return_counts=True)
        for device_type, count in zip(kinds_of.tolist(), counts.tolist(), strict=True):
            if count >= MIN_SEGMENT_ROWS:
                chosen = types == device_type
                segments[device_type] = _segment(values[chosen], devices[chosen], names, kinds, overall["features"])
    ends = np.asarray(rows.window_ends)
    return {
        "format": FORMAT,
        "prediction_type": rows.prediction_type.value,
        "feature_set_version": rows.feature_set_version,
        "feature_names": names,
        "sketch_size": SKETCH_SIZE,
        "window": {"from": str(ends.min()), "until": str(ends.max())} if ends.size else None,
        "all": overall,
        "segments": segments,
    }


def device_types_of(db: sqlite_utils.Database, device_ids: np.ndarray) -> dict[str, str]:
    """device id → device type as ingest recorded it (devices whose type is unknown are left out)."""
    wanted = set(np.unique(np.asarray(device_ids)).tolist())
    known = fleet.device_types_by_device(connection_of(db))
    return {device_id: device_type for device_id, device_type in known.items() if device_id in wanted}


class NoReference(NotFound, LookupError):
    """The version was trained before references were stored, or does not exist."""


def store_reference(db: sqlite_utils.Database, model_name: str, model_version: str, reference: dict) -> None:
    """Keep the reference with the version (a version number reused after a failed run replaces it)."""
    with write_transaction(db) as connection:
        stored = json.dumps(reference, separators=(",", ":"))
        stored_monitoring.put_reference(connection, model_name, model_version, stored, iso(datetime.now(UTC)))


def load_reference(db: sqlite_utils.Database, model_name: str, model_version: str) -> dict:
    stored = stored_monitoring.reference_json(connection_of(db), model_name, model_version)
    if stored is None:
        raise NoReference(
            f"{model_name} version {model_version} has no training reference: it was trained before references "
            "were stored, or does not exist; retrain it to check drift"
        )
    return json.loads(stored)
