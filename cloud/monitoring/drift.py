"""``detect_model_drift``: is a model version still seeing the world it was trained on, and still as good?

Three checks over a window of recent data, each against what was stored with the version at training time (its
reference, ``cloud.monitoring.reference``, and its held-out evaluation in the registry), never recomputed:

- **Feature drift**, per feature and per device-type segment (a segment without its own reference is compared
  with the all-rows one). Binned and categorical features: PSI, with a chi-square homogeneity p-value; count
  features (events per day) also the Wasserstein distance in reference standard deviations. Continuous
  features: the two-sample KS test against the reference sketch and the Wasserstein distance in units of the
  reference's spread. Each test counts effective rows, not rows (``drift_stats.effective_rows``: the windows of
  one heater are alike, so 240 rows of 30 heaters may be worth little more than 30 draws from the fleet). The
  p-values of a segment's features get Benjamini–Hochberg FDR control at ``alpha``. A feature has drifted when
  its adjusted p-value is at most ``alpha`` and its effect size is large enough: PSI reaching ``psi_threshold``
  (0.2, the conventional "significant shift"); for a count, PSI or the Wasserstein distance reaching
  ``wasserstein_threshold`` SDs (PSI on deciles grows with the square of a shift: 0.2 needs a count's mean to
  move ~0.45 SD, and a 10 % rise in draws per day, 0.2 SD, gives PSI 0.04; ``docs/drift.md``); a continuous
  feature with at most ``ks_max_rows`` current rows is judged by the KS test alone, with more by the Wasserstein
  distance reaching ``wasserstein_threshold`` spreads (with that many rows KS rejects shifts too small to
  matter). Beyond ``max_compared_rows`` KS and Wasserstein are computed on an evenly spaced subset of the rows,
  so the cost stops growing.
- **Data quality**: missing rate above the reference's by ``missing_tolerance``; values outside physical bounds
  (units in ``shared.features``: fractions in [0, 1], counts, volumes and energy not negative) or more than
  ``range_tolerance`` of the reference's range beyond its min/max in over ``out_of_range_share`` of rows; rows of
  feature sets the version does not know, and features it expects that the stored set lacks.
- **Performance**, from outcomes observed in the window joined to the version's predictions, against the
  version's held-out evaluation: component_failure, each component's ROC AUC against the baseline's with
  Hanley–McNeil standard errors (one-sided z-test, BH across components); usage_pattern, the mean absolute error
  against the baseline MAE with Welch's t-test (the baseline's spread of absolute errors from its RMSE and MAE).
  Degraded needs significance and a drop of at least ``min_degradation`` of the baseline.

Below ``min_rows`` rows (features) or ``min_outcomes`` outcomes / ``min_positives`` per class (performance) a
check says ``insufficient_data``, never ``drift``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import sqlite_utils
from scipy import stats
from sklearn.metrics import roc_auc_score

from cloud.audit import AuditLog
from cloud.config import configured_actor
from cloud.data import features as stored_features
from cloud.data import fleet
from cloud.data import monitoring as stored_monitoring
from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import Invalid
from cloud.feature_store import FeatureStore
from cloud.monitoring import DEFAULT_DRIFT_DAYS, drift_stats
from cloud.monitoring.reference import (
    NoReference,
    bin_index,
    category_index,
    device_types_of,
    load_reference,
    sketch_error,
    stored_values,
)
from cloud.registry import MLModelRegistry
from cloud.storage import iso, utc_time
from cloud.training.labels import CLASSES, NO_FAILURE
from cloud.training.usage_outputs import LABEL as USAGE_LABEL
from shared.features import FEATURES, PLAUSIBLE_TANK_C
from shared.messages import OutcomeResult, PredictionType

DEFAULT_DAYS = DEFAULT_DRIFT_DAYS
ALL = "all"
#: units of shared.features whose values cannot be negative
NON_NEGATIVE_UNITS = frozenset({"per 24 h", "min per 24 h", "L per 24 h", "L per 6 h", "W", "Wh per 24 h", "Wh/(L·K)"})
_UNITS = {feature.name: feature.unit for feature in FEATURES}


class UnknownDeviceType(Invalid):
    """A device type neither the model version nor the fleet knows: a check of it could only find no rows."""


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of a drift check (module doc); every one is in the result, so a recorded check says how it
    was judged."""

    #: false-discovery rate across a segment's features, and the level of the performance tests
    alpha: float = 0.05
    psi_threshold: float = 0.2
    #: up to this many current rows a continuous feature is judged by KS, beyond by Wasserstein
    ks_max_rows: int = 10_000
    #: Wasserstein distance, in reference spreads (robust sigma; a count's SD), that counts as drift
    wasserstein_threshold: float = 0.1
    #: a continuous feature with more current rows is compared on every k-th row (rows are in time order), so a
    #: month of a large fleet costs no more than this many: the decision there is an effect size, which they pin
    max_compared_rows: int = 200_000
    #: current rows a segment needs before its features are tested
    min_rows: int = 200
    missing_tolerance: float = 0.05
    range_tolerance: float = 0.1
    out_of_range_share: float = 0.01
    #: outcomes (and, for component_failure, positives and negatives per component) a performance test needs
    min_outcomes: int = 100
    min_positives: int = 10
    #: the smallest drop, as a share of the baseline, that counts as degradation
    min_degradation: float = 0.05

    def __post_init__(self) -> None:
        for name in ("alpha", "missing_tolerance", "out_of_range_share", "min_degradation"):
            if not 0 < getattr(self, name) < 1:
                raise Invalid(f"{name} must be between 0 and 1, not {getattr(self, name)}")
        for name in ("psi_threshold", "wasserstein_threshold", "range_tolerance"):
            if not getattr(self, name) > 0:
                raise Invalid(f"{name} must be positive, not {getattr(self, name)}")
        for name in ("ks_max_rows", "max_compared_rows", "min_rows", "min_outcomes", "min_positives"):
            if getattr(self, name) < 1:
                raise Invalid(f"{name} must be at least 1, not {getattr(self, name)}")


# -- feature drift ---------------------------------------------------------------------------------------------


def _sketch_comparison(
    reference: dict, present: np.ndarray, devices: np.ndarray, config: DriftConfig
) -> tuple[drift_stats.SketchComparison, int, float]:
    """(KS and Wasserstein against the reference's sketch, rows compared, their effective rows): on every k-th
    row beyond ``max_compared_rows``."""
    step = math.ceil(present.size / config.max_compared_rows)
    present, devices = present[::step], devices[::step]
    worth = drift_stats.effective_rows(present, devices)
    reference_worth = reference.get("effective_rows", reference["count"])
    sketch = stored_values(reference["sketch"])
    return drift_stats.compare_with_sketch(present, sketch, reference_worth, worth), int(present.size), worth


def _feature_test(
    reference: dict, present: np.ndarray, devices: np.ndarray, config: DriftConfig, sketch_rows: int
) -> dict:
    """One feature's statistics and p-value against its reference summary (no decision yet: BH comes first).

    The p-values count each side's effective rows (``drift_stats.effective_rows``; ``devices`` holds the device
    index of each present value), not its rows: a reference stored before it had them counts its rows.
    Wasserstein distances are in reference spreads (``reference._spread``).
    """
    kind = reference["kind"]
    if kind == "continuous":
        compared, compared_rows, worth = _sketch_comparison(reference, present, devices, config)
        return {
            "method": "ks" if present.size <= config.ks_max_rows else "wasserstein",
            "compared_rows": compared_rows,
            "effective_rows": round(worth, 1),
            "ks_statistic": round(compared.ks_statistic, 5),
            "ks_error_bound": round(sketch_error(sketch_rows, reference["count"]), 5),
            "wasserstein": round(compared.wasserstein / reference["spread"], 5),
            "p_value": compared.p_value,
        }
    if kind == "categorical":
        categories = reference["categories"]
        current = np.bincount(category_index(categories, present), minlength=len(categories) + 1)
        expected = np.append(reference["counts"], 0)  # the last bin: values the reference never saw
    else:
        cuts = reference["cuts"]
        current = np.bincount(bin_index(cuts, present), minlength=len(cuts) + 1)
        expected = np.asarray(reference["counts"])
    worth = drift_stats.effective_rows(present, devices)
    reference_worth = reference.get("effective_rows", reference["count"])
    entry = {
        "method": "psi",
        "effective_rows": round(worth, 1),
        "psi": round(drift_stats.population_stability_index(expected, current), 5),
        "p_value": drift_stats.homogeneity_p_value(
            expected, current, (reference_worth / max(reference["count"], 1), worth / present.size)
        ),
    }
    if "sketch" in reference:  # a count feature (a reference stored before counts had sketches has none)
        compared, compared_rows, _ = _sketch_comparison(reference, present, devices, config)
        entry |= {
            "method": "count",
            "compared_rows": compared_rows,
            "wasserstein": round(compared.wasserstein / reference["spread"], 5),
        }
    return entry


def _adjust(entries: dict[str, dict]) -> list[str]:
    """Give every entry with a ``p_value`` its Benjamini–Hochberg ``q_value``; return their names."""
    tested = [name for name, entry in entries.items() if "p_value" in entry]
    adjusted = drift_stats.benjamini_hochberg([entries[name]["p_value"] for name in tested])
    for name, q_value in zip(tested, adjusted, strict=True):
        entries[name]["p_value"] = float(f"{entries[name]['p_value']:.6g}")
        entries[name]["q_value"] = float(f"{q_value:.6g}")
    return tested


def _drifted(entry: dict, config: DriftConfig) -> bool:
    if entry["q_value"] > config.alpha:
        return False
    method = entry["method"]
    if method == "ks":
        return True
    large_psi = method in ("psi", "count") and entry["psi"] >= config.psi_threshold
    return large_psi or (method in ("wasserstein", "count") and entry["wasserstein"] >= config.wasserstein_threshold)


def _columns(values: np.ndarray) -> np.ndarray:
    """Feature-major copy of row-major rows: one pass, instead of a strided pass over every row per feature."""
    return np.ascontiguousarray(values.T)


def segment_drift(
    reference: dict,
    names: list[str],
    values: np.ndarray,
    devices: np.ndarray,
    config: DriftConfig,
    sketch_rows: int,
):
    """Drift of each feature of one segment's rows (``values`` columns in ``names`` order, ``devices`` the device
    id or index of each row) against ``reference`` (a segment of the stored reference), with BH control across
    the features tested."""
    rows = int(values.shape[0])
    _, devices = np.unique(devices, return_inverse=True)  # compact indexes: per-feature sums are bincounts
    features: dict[str, dict] = {}
    for name, column in zip(names, _columns(values), strict=True):
        summary = reference["features"].get(name)
        has_value = ~np.isnan(column)
        present = column[has_value].astype(np.float64)
        entry: dict = {"kind": summary["kind"] if summary else None, "rows": int(present.size)}
        if summary is None or not summary["count"]:
            entry["status"] = "no_reference"
        elif present.size < config.min_rows:
            entry["status"] = "insufficient_data"
        else:
            entry |= _feature_test(summary, present, devices[has_value], config, sketch_rows)
        features[name] = entry
    tested = _adjust(features)
    for name in tested:
        features[name]["status"] = "drift" if _drifted(features[name], config) else "ok"
    drifted = [name for name in tested if features[name]["status"] == "drift"]
    status = "drift" if drifted else ("insufficient_data" if rows < config.min_rows or not tested else "ok")
    return {"status": status, "rows": rows, "drifted": drifted, "features": features}


# -- data quality ----------------------------------------------------------------------------------------------


def physical_bounds(name: str) -> tuple[float, float]:
    """What the feature's unit allows (shared.features); unbounded where the unit says nothing."""
    unit = _UNITS.get(name)
    if unit == "fraction":
        return 0.0, 1.0
    if name == "setpoint_c":
        return PLAUSIBLE_TANK_C
    return (0.0, math.inf) if unit in NON_NEGATIVE_UNITS else (-math.inf, math.inf)


def quality_findings(segment: str, reference: dict, names: list[str], values: np.ndarray, config: DriftConfig):
    """Missing values and out-of-range values of one segment's rows, against the reference and the units."""
    findings: list[dict] = []
    rows = values.shape[0]
    if rows < config.min_rows:
        return findings
    for name, data in zip(names, _columns(values), strict=True):
        summary = reference["features"].get(name)
        if summary is None:
            continue
        missing = float(np.isnan(data).mean())
        if missing - summary["missing_rate"] > config.missing_tolerance:
            findings.append(
                {
                    "check": "missing",
                    "segment": segment,
                    "feature": name,
                    "reference_missing_rate": summary["missing_rate"],
                    "missing_rate": round(missing, 4),
                }
            )
        present = data[~np.isnan(data)]
        if not present.size or "min" not in summary:
            continue
        low, high = physical_bounds(name)
        impossible = int(((present < low) | (present > high)).sum())
        margin = config.range_tolerance * (summary["max"] - summary["min"])
        beyond = int(((present < summary["min"] - margin) | (present > summary["max"] + margin)).sum())
        if impossible or beyond > config.out_of_range_share * present.size:
            findings.append(
                {
                    "check": "out_of_range",
                    "segment": segment,
                    "feature": name,
                    "impossible": impossible,
                    "physical_bounds": [low if math.isfinite(low) else None, high if math.isfinite(high) else None],
                    "beyond_reference": beyond,
                    "reference_range": [summary["min"], summary["max"]],
                    "observed_range": [float(present.min()), float(present.max())],
                    "share": round((impossible + beyond) / present.size, 4),
                }
            )
    return findings


def _schema_findings(db: sqlite_utils.Database, reference: dict, start: str, end: str, stored: list[str] | None):
    """Rows of feature sets the version does not know, and features it expects that the stored set lacks."""
    findings = []
    version = reference["feature_set_version"]
    for other, count in stored_features.rows_of_other_sets(connection_of(db), version, start, end):
        if count:
            findings.append({"check": "unknown_schema", "feature_set_version": other, "rows": count})
    if stored is not None:
        missing = [name for name in reference["feature_names"] if name not in stored]
        unknown = [name for name in stored if name not in reference["feature_names"]]
        if missing or unknown:
            findings.append(
                {
                    "check": "unknown_schema",
                    "feature_set_version": version,
                    "missing_features": missing,
                    "unknown_features": unknown,
                }
            )
    return findings


# -- performance -----------------------------------------------------------------------------------------------


def _outcome_rows(db: sqlite_utils.Database, row: dict, start: str, end: str, device_type: str | None) -> list:
    """(prediction_id, outputs_json, component, result, value) of outcomes observed in the window on the
    version's predictions."""
    return stored_predictions.version_outcomes(
        connection_of(db), row["model_name"], row["model_version"], start, end, device_type
    )


def _failure_performance(outcomes: list, baseline: dict, config: DriftConfig) -> dict:
    """Each component's recent ROC AUC against the held-out one (see module doc)."""
    failed: dict[str, set[str]] = {}
    outputs: dict[str, dict] = {}
    for prediction_id, outputs_json, component, result, _ in outcomes:
        if result is None:
            continue
        outputs[prediction_id] = json.loads(outputs_json)
        found = failed.setdefault(prediction_id, set())
        if component and result in (OutcomeResult.FAILED, OutcomeResult.REPLACED):
            found.add(component)
    base_rows = int(baseline.get("rows", 0))
    components: dict[str, dict] = {}
    for name in CLASSES:
        if name == NO_FAILURE:
            continue
        scored = [p for p in outputs if name in outputs[p]]
        y = np.array([name in failed[p] for p in scored], dtype=bool)
        positives, negatives = int(y.sum()), int((~y).sum())
        base = baseline.get("per_component", {}).get(name, {})
        entry: dict = {"positives": positives, "negatives": negatives, "baseline_roc_auc": base.get("roc_auc")}
        if "roc_auc" not in base or min(positives, negatives) < config.min_positives:
            entry["status"] = "insufficient_data"
        else:
            auc = float(roc_auc_score(y, [outputs[p][name] for p in scored]))
            base_case = (base["roc_auc"], base["positives"], base_rows - base["positives"])
            entry |= {
                "roc_auc": round(auc, 4),
                "p_value": drift_stats.auc_drop_p_value(base_case, (auc, positives, negatives)),
            }
        components[name] = entry
    tested = _adjust(components)
    for name in tested:
        entry = components[name]
        drop = entry["baseline_roc_auc"] - entry["roc_auc"]
        degraded = entry["q_value"] <= config.alpha and drop >= config.min_degradation * entry["baseline_roc_auc"]
        entry["status"] = "degraded" if degraded else "ok"
    if len(outputs) < config.min_outcomes or not tested:
        status = "insufficient_data"
    else:
        status = "degraded" if any(components[n]["status"] == "degraded" for n in tested) else "ok"
    return {"status": status, "test": "roc_auc_hanley_mcneil", "outcomes": len(outputs), "components": components}


def _usage_performance(outcomes: list, baseline: dict, config: DriftConfig) -> dict:
    """The recent mean absolute error against the held-out MAE (Welch's t-test)."""
    measured: dict[str, list[float]] = {}
    predicted: dict[str, float] = {}
    for prediction_id, outputs_json, _, _, value in outcomes:
        litres = json.loads(outputs_json).get(USAGE_LABEL)
        if value is not None and litres is not None:
            measured.setdefault(prediction_id, []).append(value)
            predicted[prediction_id] = litres
    errors = np.array([abs(predicted[p] - float(np.mean(measured[p]))) for p in measured])
    out: dict = {"test": "welch_t_mae", "outcomes": int(errors.size), "baseline_mae_litres": baseline.get("mae_litres")}
    if "mae_litres" not in baseline or "rmse_litres" not in baseline:
        return out | {"status": "no_baseline"}
    if errors.size < config.min_outcomes:
        return out | {"status": "insufficient_data"}
    base_mae, base_rows = baseline["mae_litres"], int(baseline["rows"])
    base_spread = math.sqrt(max(baseline["rmse_litres"] ** 2 - base_mae**2, 0.0))
    mae = float(errors.mean())
    test = stats.ttest_ind_from_stats(
        mae,
        float(errors.std(ddof=1)),
        errors.size,
        base_mae,
        base_spread,
        base_rows,
        equal_var=False,
        alternative="greater",
    )
    p_value = float(test.pvalue) if math.isfinite(test.pvalue) else 1.0
    degraded = p_value <= config.alpha and mae >= base_mae * (1 + config.min_degradation)
    return out | {"status": "degraded" if degraded else "ok", "mae_litres": round(mae, 3), "p_value": p_value}


def performance_check(db, row: dict, start: str, end: str, device_type: str | None, config: DriftConfig) -> dict:
    """Performance of the version on outcomes observed in the window, against its held-out evaluation."""
    prediction_type = PredictionType(row["prediction_type"])
    baseline = json.loads(row["metrics_json"] or "{}").get("holdout")
    if prediction_type == PredictionType.ANOMALY:
        return {"status": "not_applicable", "reason": "anomaly scores have no outcome to be right or wrong about"}
    if not baseline:
        return {"status": "no_baseline", "reason": "the version was registered without a held-out evaluation"}
    outcomes = _outcome_rows(db, row, start, end, device_type)
    if prediction_type == PredictionType.COMPONENT_FAILURE:
        result = _failure_performance(outcomes, baseline, config)
    else:
        result = _usage_performance(outcomes, baseline, config)
    return result | {"baseline_rows": baseline.get("rows")}


# -- the check -------------------------------------------------------------------------------------------------


def _version_row(db: sqlite_utils.Database, model_name: str, version: str | None, device_type: str | None) -> dict:
    """The named version, else the production one for the device type, else the newest with a reference."""
    registry = MLModelRegistry(db)
    if version is not None:
        return registry.get_version(model_name, version)
    active = registry.get_active_model(model_name, device_type)
    if active is not None:
        return active
    newest = stored_monitoring.newest_referenced_version(connection_of(db), model_name)
    if newest is None:
        registry.list_versions(model_name)  # UnknownModel for a name never registered
        raise NoReference(f"no version of {model_name} has a training reference; retrain it to check drift")
    return registry.get_version(model_name, newest)


def _check_device_type(db: sqlite_utils.Database, row: dict, reference: dict, device_type: str) -> None:
    """Refuse a device type named by none of: the version's targets, its training segments, the fleet's heaters."""
    known = {*json.loads(row["device_types_json"] or "[]"), *reference["segments"]}
    known.update(fleet.known_device_types(connection_of(db)))
    if device_type not in known:
        names = ", ".join(sorted(known)) or "none"
        raise UnknownDeviceType(
            f"unknown device type {device_type!r} for {row['model_name']} version {row['model_version']}: "
            f"known device types: {names}"
        )


def _window(
    window: tuple[str | datetime, str | datetime] | None, days: int, now: datetime | None
) -> tuple[datetime, datetime]:
    """The window asked for (dates or ISO times as text too, as the plan passes them), else ``days`` up to now."""
    if window is not None:
        start, end = utc_time(window[0], "the window's start"), utc_time(window[1], "the window's end")
        if start >= end:
            raise Invalid(f"the window's start {start.isoformat()} must be before its end {end.isoformat()}")
        return start, end
    if days < 1:
        raise Invalid(f"days must be at least 1, not {days}")
    end = now or datetime.now(UTC)
    return end - timedelta(days=days), end


def _current_rows(db: sqlite_utils.Database, reference: dict, start: str, end: str, device_type: str | None):
    """(values in the reference's feature order, NaN where the store lacks a feature; device index per row;
    device type per row; the stored feature names) of the reference's feature set in the window."""
    store = FeatureStore(db)
    version = reference["feature_set_version"]
    names = reference["feature_names"]
    stored = store._feature_set_names(version)
    if stored is None:
        return np.zeros((0, len(names)), np.float32), np.array([], np.int64), np.array([], dtype=str), None
    devices, row_device, _, values = store.read_rows(version, start, end, device_type)
    aligned = np.full((values.shape[0], len(names)), np.nan, np.float32)
    for column, name in enumerate(names):
        if name in stored:
            aligned[:, column] = values[:, stored.index(name)]
    types_of = device_types_of(db, devices)
    device_types = np.array([types_of.get(device, "") for device in devices.tolist()], dtype=str)
    row_types = device_types[row_device] if row_device.size else np.array([], dtype=str)
    return aligned, row_device, row_types, stored


def detect_model_drift(
    db: sqlite_utils.Database,
    model_name: str,
    window: tuple[str | datetime, str | datetime] | None = None,
    days: int = DEFAULT_DAYS,
    device_type: str | None = None,
    version: str | None = None,
    config: DriftConfig | None = None,
    now: datetime | None = None,
) -> dict:
    """Check a version (default: production for ``device_type``) over ``window`` (default: the last ``days``).

    Returns a JSON-ready result (module doc); nothing is stored: ``record_check`` keeps it. Raises
    UnknownModel, NoReference, or Invalid for a bad window or an unknown device type (UnknownDeviceType).
    """
    config = config or DriftConfig()
    start, end = _window(window, days, now)
    row = _version_row(db, model_name, version, device_type)
    reference = load_reference(db, model_name, row["model_version"])
    if device_type is not None:
        _check_device_type(db, row, reference, device_type)
    start_text, end_text = iso(start), iso(end)
    names = reference["feature_names"]
    values, row_devices, row_types, stored = _current_rows(db, reference, start_text, end_text, device_type)
    sketch_rows = reference["sketch_size"]

    parts = {device_type or ALL: (values, row_devices)}
    if device_type is None:
        for kind in sorted(set(row_types.tolist()) - {""}):
            chosen = row_types == kind
            parts[kind] = (values[chosen], row_devices[chosen])
    segments, findings = {}, _schema_findings(db, reference, start_text, end_text, stored)
    for segment, (segment_values, segment_devices) in parts.items():
        compared_with = segment if segment in reference["segments"] else ALL
        segment_reference = reference["segments"].get(segment, reference[ALL])
        result = segment_drift(segment_reference, names, segment_values, segment_devices, config, sketch_rows)
        segments[segment] = {"reference": compared_with, "reference_rows": segment_reference["rows"], **result}
        findings += quality_findings(segment, segment_reference, names, segment_values, config)

    performance = performance_check(db, row, start_text, end_text, device_type, config)
    drifted = sorted({name for segment in segments.values() for name in segment["drifted"]})
    main = segments[device_type or ALL]
    if drifted or performance["status"] == "degraded":
        status = "drift"
    elif main["status"] == "insufficient_data" and performance["status"] != "ok":
        status = "insufficient_data"
    else:
        status = "ok"
    return {
        "model_name": model_name,
        "model_version": row["model_version"],
        "device_type": device_type,
        "window": {"start": start_text, "end": end_text},
        "checked_at": iso(datetime.now(UTC)),
        "status": status,
        "feature_drift": {"status": "drift" if drifted else main["status"], "drifted": drifted, "segments": segments},
        "data_quality": {"status": "issues" if findings else "ok", "findings": findings},
        "performance": performance,
        "config": asdict(config),
    }


def record_check(db: sqlite_utils.Database, result: dict, *, actor: str | None = None) -> int:
    """Keep a check's result in ``drift_checks`` (the history retraining triggers and the dashboard read), audited
    as ``actor`` in the same transaction."""
    actor = actor or configured_actor()
    row = {
        "model_name": result["model_name"],
        "model_version": result["model_version"],
        "device_type": result["device_type"],
        "window_start": result["window"]["start"],
        "window_end": result["window"]["end"],
        "checked_at": result["checked_at"],
        "checked_by": actor,
        "status": result["status"],
        "drifted_features": len(result["feature_drift"]["drifted"]),
        "quality_findings": len(result["data_quality"]["findings"]),
        "performance_status": result["performance"]["status"],
        "result_json": json.dumps(result, separators=(",", ":")),
    }
    with write_transaction(db) as connection:
        check_id = stored_monitoring.add_drift_check(connection, row)
        details = {"check_id": check_id, "version": row["model_version"], "status": row["status"]}
        AuditLog(db).record(actor, "drift.check", row["model_name"], details)
    return check_id


def drift_history(db: sqlite_utils.Database, model_name: str, limit: int = 50) -> list[dict]:
    """Recorded checks of a model, newest first: the summary columns and the drifted features' names."""
    rows = stored_monitoring.drift_checks_of(connection_of(db), model_name, limit)
    return [
        {k: v for k, v in row.items() if k != "result_json"}
        | {"drifted": json.loads(row["result_json"])["feature_drift"]["drifted"]}
        for row in rows
    ]
