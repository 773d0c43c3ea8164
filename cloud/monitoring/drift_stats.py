"""The statistics a drift check computes against a stored reference; every p-value comes from scipy.stats.

Kept apart from the checks that read the database so each formula can be tested against its textbook or scipy
counterpart on fixed numbers.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy import stats

#: proportions below this are raised to it before PSI's logarithm (an empty bin would make it infinite)
PSI_FLOOR = 1e-4


#: above this many effective rows (n·m / (n + m)) the KS p-value is Kolmogorov's limit: scipy's finite-n
#: ``kstwo.sf`` takes up to a third of a second per call there, and differs from the limit by under 5 %
EXACT_KS_ROWS = 2_000


class SketchComparison(NamedTuple):
    #: two-sample KS statistic and its two-sided p-value
    ks_statistic: float
    p_value: float
    #: Wasserstein-1 (earth mover's) distance, in the feature's unit
    wasserstein: float


def compare_with_sketch(
    current: np.ndarray, sketch: np.ndarray, reference_rows: float, current_rows: float | None = None
) -> SketchComparison:
    """KS and Wasserstein of ``current`` against the reference its sorted ``sketch`` stands for.

    After sorting ``current`` (n values) the work is O(K log n) for the K sketch points, plus one running sum.
    KS: both empirical CDFs are right-continuous steps and the sketch's is flat between its points, so the
    largest gap (``scipy.stats.ks_2samp``'s D, ties included) is at a sketch point or just before one.
    Wasserstein: the area between the CDFs, which is the area between the quantile functions (what
    ``scipy.stats.wasserstein_distance`` computes); in units of 1 / (n·K) of probability, current value i
    covers [i·K, (i + 1)·K) and sketch point j covers [j·n, (j + 1)·n), so point j's share is the sum of
    |value − point| over the values wholly under it (running sums, split where values pass the point) and the
    parts of at most two values at its ends.

    The sketch stands in for the reference's CDF within ``reference.sketch_error``. The p-value uses the
    reference's real size: ``kstwo.sf(D, round(n·m / (n + m)))``, what ``ks_2samp(method="asymp")`` computes, up
    to ``EXACT_KS_ROWS`` effective rows, and ``kstwobign.sf(D·sqrt(n·m / (n + m)))`` beyond. ``reference_rows``
    and ``current_rows`` (default: every current value) may be ``effective_rows``, for rows that are not
    independent. Both are compared as float64, which holds every float32 and integer feature value exactly: ties
    in the rows stay ties with the sketch (``reference.stored_values``).
    """
    ordered, sketch = np.sort(np.asarray(current, np.float64)), np.asarray(sketch, np.float64)
    n, k = ordered.size, sketch.size
    points = np.unique(sketch)
    gaps = [
        np.searchsorted(ordered, points, side) / n - np.searchsorted(sketch, points, side) / k
        for side in ("left", "right")
    ]
    statistic = float(np.abs(gaps).max())

    low = np.arange(k, dtype=np.int64) * n
    high = low + n
    first, end = -(-low // k), high // k  # the values wholly under point j: first .. end - 1
    sums = np.concatenate([[0.0], np.cumsum(ordered)])
    split = np.clip(np.searchsorted(ordered, sketch), first, np.maximum(end, first))  # values below the point
    whole = sketch * (2 * split - first - end) - 2 * sums[split] + sums[first] + sums[end]
    area = np.where(first < end, whole, 0.0) * k
    area += (np.minimum(first * k, high) - low) * np.abs(ordered[np.minimum(low // k, n - 1)] - sketch)
    area += np.where(end >= first, high - end * k, 0) * np.abs(ordered[np.minimum(end, n - 1)] - sketch)
    wasserstein = float(area.sum()) / (n * k)

    independent = n if current_rows is None else current_rows
    effective = independent * reference_rows / (independent + reference_rows)
    if effective <= EXACT_KS_ROWS:
        p_value = float(stats.kstwo.sf(statistic, round(effective)))
    else:
        p_value = float(stats.kstwobign.sf(statistic * math.sqrt(effective)))
    return SketchComparison(statistic, min(max(p_value, 0.0), 1.0), wasserstein)


def effective_rows(values: np.ndarray, groups: np.ndarray) -> float:
    """How many independent rows ``values`` are worth when rows of one group (one heater; ``groups`` holds a
    non-negative group index per value) are alike: Kish's ``n / (1 + (n0 − 1) · ICC)``, with ICC(1) from the
    one-way ANOVA of values by group (Shrout & Fleiss 1979) and n0 its average group size. A heater's setpoint is
    the same in each of its windows: 240 rows of 30 heaters are 30 draws from the fleet, and a test counting 240
    calls every difference between two samples of heaters drift. Rows independent of their group keep about
    their number; a single group, or no spread, keeps all.
    """
    rows = values.size
    sizes = np.bincount(groups)
    count = int(np.count_nonzero(sizes))
    if count < 2 or rows <= count:
        return float(rows)
    means = np.bincount(groups, weights=values, minlength=sizes.size) / np.maximum(sizes, 1)
    between = float(np.dot(sizes, (means - values.mean()) ** 2)) / (count - 1)
    within = float(np.sum((values - means[groups]) ** 2)) / (rows - count)
    n0 = (rows - float(np.dot(sizes, sizes)) / rows) / (count - 1)
    if between + (n0 - 1) * within <= 0:
        return float(rows)
    icc = min(max((between - within) / (between + (n0 - 1) * within), 0.0), 1.0)
    return rows / (1 + (n0 - 1) * icc)


def population_stability_index(reference_counts: np.ndarray, current_counts: np.ndarray) -> float:
    """PSI = Σ (a − e) · ln(a / e) over bins, a and e the current and reference proportions (floored at
    ``PSI_FLOOR``). Conventional reading: below 0.1 stable, 0.1–0.2 moderate, above 0.2 a significant shift."""
    expected = np.maximum(np.asarray(reference_counts, np.float64) / max(np.sum(reference_counts), 1), PSI_FLOOR)
    actual = np.maximum(np.asarray(current_counts, np.float64) / max(np.sum(current_counts), 1), PSI_FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def homogeneity_p_value(
    reference_counts: np.ndarray, current_counts: np.ndarray, worth: tuple[float, float] = (1.0, 1.0)
) -> float:
    """p-value of the chi-square test that both count vectors come from one distribution (bins empty in both
    are dropped; a single remaining bin says nothing, p = 1). ``worth``: what one row of the reference and of the
    current counts is worth in independent rows (``effective_rows`` / rows), scaling each count vector."""
    table = np.vstack(
        [np.asarray(reference_counts, np.float64) * worth[0], np.asarray(current_counts, np.float64) * worth[1]]
    )
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 1.0
    return float(stats.chi2_contingency(table).pvalue)


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """Hanley & McNeil's (1982) standard error of a ROC AUC from its class sizes (no library provides it)."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc**2) + (negatives - 1) * (q2 - auc**2)) / (
        positives * negatives
    )
    return math.sqrt(max(variance, 0.0))


def auc_drop_p_value(baseline: tuple[float, int, int], recent: tuple[float, int, int]) -> float:
    """One-sided p-value that the recent AUC is below the baseline's: a z-test on independent samples, each
    given as (auc, positives, negatives)."""
    spread = math.hypot(auc_standard_error(*baseline), auc_standard_error(*recent))
    if spread == 0:
        return 1.0 if recent[0] >= baseline[0] else 0.0
    return float(stats.norm.sf((baseline[0] - recent[0]) / spread))


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (compare each with the FDR level), via scipy."""
    return stats.false_discovery_control(p_values, method="bh").tolist() if p_values else []
