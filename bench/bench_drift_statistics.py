"""Evidence for the drift statistics' bounds and rules (``docs/drift.md`` quotes these figures).

``sketch``: a simulated fleet's reference (``build_reference`` of every row, 4 segments), read back from its JSON:
the KS statistic of each sketched feature against its own training rows (``scipy.stats.ks_2samp`` gives 0 there)
and, against another fleet's rows, its distance from ``ks_2samp`` on the raw float32 rows, with the bound
``sketch_error``; the same with the sketch rounded to 7 significant digits, as references of format 1 stored it.

``counts``: a count feature (Poisson draws per day, 100,000 reference days) through ``segment_drift``: a 10 % rise
in the mean (4 → 4.4) and pure sampling noise at several window sizes, with PSI, the chi-square p-value, the
Wasserstein distance in reference SDs and the standardized mean difference, and how often each rule flags.
"""

from __future__ import annotations

import json

import numpy as np
from scipy import stats

from bench.bench_drift import training_rows
from cloud.monitoring.drift import DriftConfig, segment_drift
from cloud.monitoring.drift_stats import compare_with_sketch
from cloud.monitoring.reference import SKETCH_SIZE, build_reference, sketch_error, stored_values
from firmware_sim.history import History, generate_history

CONFIG = DriftConfig()
NOISE_SIZES = (200, 1_000, 10_000, 100_000, 1_000_000)
#: noise windows per size (fewer for the largest, each a million rows)
REPEATS = {200: 200, 1_000: 200, 10_000: 100, 100_000: 40, 1_000_000: 10}


def _present(history: History, segment: str, column: int) -> np.ndarray:
    types = history.device_types[history.row_device]
    values = history.features[np.ones(len(types), bool) if segment == "all" else types == segment, column]
    return values[~np.isnan(values)]


def _sketch_accuracy() -> dict:
    trained, later = generate_history(heaters=120, days=60, seed=11), generate_history(heaters=120, days=60, seed=12)
    types = dict(zip(trained.device_ids, trained.device_types, strict=True))
    rows = training_rows(list(trained.feature_names), trained.features, trained.device_ids[trained.row_device])
    reference = json.loads(json.dumps(build_reference(rows, types)))
    figures = {"features": 0, "over_bound": 0, "over_bound_7_digits": 0, "worst_own_d": 0.0}
    figures |= {"worst_own_d_7_digits": 0.0, "worst_gap_to_ks_2samp": 0.0, "bound_at_most": 0.0}
    for segment, summary in [("all", reference["all"]), *reference["segments"].items()]:
        for column, name in enumerate(reference["feature_names"]):
            feature = summary["features"][name]
            if "sketch" not in feature:
                continue
            own, other = _present(trained, segment, column), _present(later, segment, column)
            sketch = stored_values(feature["sketch"])
            rounded = stored_values([float(f"{v:.7g}") for v in feature["sketch"]])
            bound = sketch_error(SKETCH_SIZE, feature["count"])
            own_d = compare_with_sketch(own, sketch, own.size).ks_statistic
            own_d_7 = compare_with_sketch(own, rounded, own.size).ks_statistic
            gap = abs(compare_with_sketch(other, sketch, own.size).ks_statistic - stats.ks_2samp(other, own)[0])
            figures["features"] += 1
            figures["over_bound"] += int(max(own_d, gap) > bound)
            figures["over_bound_7_digits"] += int(own_d_7 > bound)
            figures["worst_own_d"] = max(figures["worst_own_d"], round(own_d, 5))
            figures["worst_own_d_7_digits"] = max(figures["worst_own_d_7_digits"], round(own_d_7, 5))
            figures["worst_gap_to_ks_2samp"] = max(figures["worst_gap_to_ks_2samp"], round(gap, 5))
            figures["bound_at_most"] = max(figures["bound_at_most"], round(bound, 5))
    return figures


def _count_reference(rng: np.random.Generator) -> dict:
    values = rng.poisson(4.0, (100_000, 1)).astype(np.float32)
    return build_reference(training_rows(["draw_count"], values, np.arange(len(values)).astype(str)), None)["all"]


def _windows(reference: dict, rng: np.random.Generator, rows: int, mean: float, repeats: int) -> dict:
    """Each statistic's median and 95th percentile over ``repeats`` windows, and how often each rule flags."""
    summary = reference["features"]["draw_count"]
    found: dict[str, list[float]] = {"psi": [], "p_value": [], "wasserstein_sd": [], "mean_shift_sd": []}
    flagged_now = flagged_by_psi = 0
    for _ in range(repeats):
        values = rng.poisson(mean, (rows, 1)).astype(np.float32)
        entry = segment_drift(reference, ["draw_count"], values, np.arange(rows), CONFIG, SKETCH_SIZE)["features"]
        entry = entry["draw_count"]
        found["psi"].append(entry["psi"])
        found["p_value"].append(entry["p_value"])
        found["wasserstein_sd"].append(entry["wasserstein"])
        found["mean_shift_sd"].append((float(values.mean()) - summary["mean"]) / summary["std"])
        flagged_now += entry["status"] == "drift"
        flagged_by_psi += entry["q_value"] <= CONFIG.alpha and entry["psi"] >= CONFIG.psi_threshold
    out = {
        name: {"median": float(f"{np.median(v):.3g}"), "p95": float(f"{np.quantile(v, 0.95):.3g}")}
        for name, v in found.items()
        if name != "p_value"
    }
    return out | {
        "rows": rows,
        "windows": repeats,
        "share_p_at_most_alpha": round(float(np.mean(np.asarray(found["p_value"]) <= CONFIG.alpha)), 3),
        "flagged_by_rule": round(flagged_now / repeats, 3),
        "flagged_by_psi_alone": round(flagged_by_psi / repeats, 3),
    }


def run() -> dict:
    rng = np.random.default_rng(2026)
    reference = _count_reference(rng)
    return {
        "sketch": _sketch_accuracy(),
        "counts": {
            "reference": "Poisson(4) draws per day, 100,000 independent days",
            "rule": f"q <= {CONFIG.alpha} and (PSI >= {CONFIG.psi_threshold} or Wasserstein >= "
            f"{CONFIG.wasserstein_threshold} reference SDs)",
            "rise_4_to_4.4": [_windows(reference, rng, rows, 4.4, 20) for rows in (1_000, 10_000, 100_000)],
            "noise": [_windows(reference, rng, rows, 4.0, REPEATS[rows]) for rows in NOISE_SIZES],
        },
    }
