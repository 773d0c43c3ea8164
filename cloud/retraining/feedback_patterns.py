"""Feedback patterns that call for retraining: a rise in outcomes contradicting predictions, or in low ratings.

Each compares the share in the recent window with the share in the baseline window before it, with a one-sided
Fisher exact test (scipy) and a minimum sample, so a handful of unlucky visits never triggers a retrain.

- Contradictions (``component_failure``): a technician found component C failed or replaced while the champion
  prediction linked to the visit gave C a probability under the version's alert threshold (a miss), or found C
  ok while it was over the threshold (a false alarm).
- Low ratings (any model): user ratings of 1 or 2 among the ratings of the model's predictions.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import sqlite_utils
from scipy.stats import fisher_exact

from cloud.data import models as stored_models
from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of
from cloud.monitoring.performance import DEFAULT_THRESHOLD, alert_thresholds
from cloud.storage import iso
from shared.messages import OutcomeResult

LOW_RATING = 2


@dataclass(frozen=True)
class PatternCheck:
    """One pattern's counts in both windows, the test, and whether it fired."""

    name: str
    recent: int
    recent_hits: int
    baseline: int
    baseline_hits: int
    p_value: float | None
    fired: bool
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)


def rise(
    name: str, recent: tuple[int, int], baseline: tuple[int, int], min_sample: int, min_rise: float, alpha: float
) -> PatternCheck:
    """Did the share of hits rise from ``baseline`` to ``recent`` ((hits, total) each), significantly and by
    at least ``min_rise``?"""
    (hits, total), (base_hits, base_total) = recent, baseline
    counts = {"recent": total, "recent_hits": hits, "baseline": base_total, "baseline_hits": base_hits}
    if total < min_sample or base_total < min_sample:
        reason = f"{name}: {total} recent and {base_total} baseline observations, {min_sample} needed in each"
        return PatternCheck(name, **counts, p_value=None, fired=False, reason=reason)
    share, base_share = hits / total, base_hits / base_total
    table = [[hits, total - hits], [base_hits, base_total - base_hits]]
    p_value = float(fisher_exact(table, alternative="greater").pvalue)
    fired = p_value < alpha and share - base_share >= min_rise
    verdict = "rose" if fired else "did not rise enough"
    reason = (
        f"{name} {verdict}: {share:.1%} of {total} recent against {base_share:.1%} of {base_total} before "
        f"(one-sided Fisher p={p_value:.3g}, alpha {alpha}, minimum rise {min_rise:.0%})"
    )
    return PatternCheck(name, **counts, p_value=p_value, fired=fired, reason=reason)


def contradiction_counts(db: sqlite_utils.Database, model_name: str, start: datetime, end: datetime) -> tuple[int, int]:
    """(contradicting, all) technician findings received in ``[start, end)`` about the model's champion predictions."""
    connection = connection_of(db)
    rows = stored_predictions.technician_findings(connection, model_name, iso(start), iso(end))
    thresholds: dict[str | None, dict[str, float]] = {}  # by version: few versions, many findings
    contradicting = 0
    for component, result, outputs_json, version in rows:
        if version not in thresholds:
            thresholds[version] = alert_thresholds(stored_models.metrics_json(connection, model_name, version))
        probability = json.loads(outputs_json or "{}").get(component)
        if probability is None:
            continue
        alerted = probability >= thresholds[version].get(component, DEFAULT_THRESHOLD)
        failed = result in (OutcomeResult.FAILED.value, OutcomeResult.REPLACED.value)
        contradicting += int(alerted != failed)
    return contradicting, len(rows)


def low_rating_counts(db: sqlite_utils.Database, model_name: str, start: datetime, end: datetime) -> tuple[int, int]:
    """(ratings of 1–2, all ratings) submitted in ``[start, end)`` about the model's predictions."""
    return stored_predictions.rating_counts(connection_of(db), model_name, iso(start), iso(end), LOW_RATING)


def feedback_patterns(
    db: sqlite_utils.Database,
    model_name: str,
    now: datetime,
    window: timedelta,
    baseline: timedelta,
    min_sample: int,
    min_rise: float,
    alpha: float,
) -> list[PatternCheck]:
    """Both patterns over ``[now - window, now)`` against ``[now - window - baseline, now - window)``."""
    split, first = now - window, now - window - baseline
    checks = [
        rise(
            "low ratings",
            low_rating_counts(db, model_name, split, now),
            low_rating_counts(db, model_name, first, split),
            min_sample,
            min_rise,
            alpha,
        )
    ]
    if model_name == "component_failure":
        checks.insert(
            0,
            rise(
                "contradicting technician outcomes",
                contradiction_counts(db, model_name, split, now),
                contradiction_counts(db, model_name, first, split),
                min_sample,
                min_rise,
                alpha,
            ),
        )
    return checks
