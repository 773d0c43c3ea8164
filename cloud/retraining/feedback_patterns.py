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
    rows = db.execute(
        """SELECT o.component, o.result, p.outputs_json, m.metrics_json
           FROM outcomes o
           JOIN predictions p ON p.prediction_id = o.prediction_id AND p.arm = 'champion'
           LEFT JOIN models m ON m.model_name = p.model_name AND m.model_version = p.model_version
           WHERE o.source = 'technician' AND o.component IS NOT NULL AND o.result IS NOT NULL
             AND p.model_name = ? AND o.received_at >= ? AND o.received_at < ?""",
        [model_name, iso(start), iso(end)],
    ).fetchall()
    thresholds: dict[str | None, dict[str, float]] = {}
    contradicting = 0
    for component, result, outputs_json, metrics_json in rows:
        if metrics_json not in thresholds:
            thresholds[metrics_json] = alert_thresholds(metrics_json)
        probability = json.loads(outputs_json or "{}").get(component)
        if probability is None:
            continue
        alerted = probability >= thresholds[metrics_json].get(component, DEFAULT_THRESHOLD)
        failed = result in (OutcomeResult.FAILED.value, OutcomeResult.REPLACED.value)
        contradicting += int(alerted != failed)
    return contradicting, len(rows)


def low_rating_counts(db: sqlite_utils.Database, model_name: str, start: datetime, end: datetime) -> tuple[int, int]:
    """(ratings of 1–2, all ratings) submitted in ``[start, end)`` about the model's predictions."""
    low, total = db.execute(
        """SELECT coalesce(sum(f.rating <= ?), 0), count(*) FROM feedback f
           WHERE f.submitted_at >= ? AND f.submitted_at < ?
             AND f.prediction_id IN (SELECT prediction_id FROM predictions WHERE model_name = ?)""",
        [LOW_RATING, iso(start), iso(end), model_name],
    ).fetchone()
    return int(low), int(total)


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
