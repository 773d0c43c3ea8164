"""The ``component_failure`` figures a reliability engineer acts on: truck rolls, not rows.

ROC and PR AUC score rows; a utility pays for dispatches. Here a score becomes a dispatch policy: an alarm is a
row whose component score reaches a threshold, and the first alarm of a heater's component starts a dispatch that
covers the next horizon (alarms inside it send no second truck). A dispatch is *true* when that component fails
within the horizon after it, else *false*; a false one that a failure of that component follows within
``EARLY_WARNING`` is an *early warning* (the 14-day classification calls it a false alarm, a technician would
have found a worn part). A failure is *caught* when a dispatch of its component came within the horizon before it;
its lead time runs from that dispatch. Only failures whose whole horizon lies inside the scored rows count.
A part found worn and replaced (a technician's "found degraded", or a part replaced after an alert,
firmware_sim/dispatch.py) is among the failures at its visit, with ground truth and findings alike: the
failure it foretold never happens, so a dispatch before the visit is a true catch (lead time to the visit),
not a false dispatch.

Every scorer (the model and each baseline) is put at the same false-dispatch budget per component: the lowest
threshold whose false dispatches per 100 heater-months stay within it. Confidence intervals resample heaters
(``scipy.stats.bootstrap``, percentile) with the thresholds held fixed. docs/evaluation.md reads every figure.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from scipy.stats import DegenerateDataWarning, bootstrap
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from cloud.training.data import LabelledRows
from cloud.training.labels import CLASSES, NO_FAILURE

#: False dispatches allowed per 100 heater-months, per component, when recall is read "at the budget".
DEFAULT_BUDGET = 1.0
#: A false dispatch followed by a real failure of its component within this time is an early warning.
EARLY_WARNING = timedelta(days=90)
DAYS_PER_MONTH = 365.25 / 12
COMPONENTS: list[str] = [c for c in CLASSES if c != NO_FAILURE]
#: Resamples of heaters behind every confidence interval, and its level.
RESAMPLES = 999
CONFIDENCE = 0.95
LEAD_TIME_PERCENTILES = (10, 25, 50, 75, 90)
CALIBRATION_BINS = 10
#: The components' shared budget (``len(COMPONENTS)`` × the budget) is split between them in steps of this
#: share of the per-component budget.
SHARED_STEP = 0.5
#: Upper ends (days) of the time-to-failure view's bins; alarms later than the last, or never followed by a
#: failure of their component, fall in the bin after it.
TIME_TO_FAILURE_DAYS = (14, 30, 60, 90)
#: Fewer countable held-out failures than this cannot tell a model from a baseline: the gate says so and does not
#: hold the model back on them (a small fleet's weeks hold a handful of failures, e.g. the demo's retraining).
MIN_FAILURES_TO_COMPARE = 10
#: Firmware error-code features, one per component: what heaters already report when a part has failed.
FIRMWARE_FEATURE = "errors_{}"


@dataclass(frozen=True)
class Fleet:
    """The scored rows as heaters: who each row belongs to, their observed months and every known failure."""

    heater: np.ndarray  # heater index per row
    heaters: np.ndarray  # device id per heater index
    window_ends: np.ndarray
    months: np.ndarray  # observed heater-months per heater (distinct days with a row / days per month)
    failure_heater: np.ndarray  # heater index per known failure (failures of other heaters dropped)
    failure_time: np.ndarray
    failure_label: np.ndarray  # index into CLASSES
    horizon: np.timedelta64
    start: np.datetime64
    until: np.datetime64
    order: np.ndarray  # rows in (heater, time) order: alarms picked through it come out sorted
    sorted_keys: np.ndarray  # ``_keys`` of the rows in that order

    @classmethod
    def of(cls, rows: LabelledRows, horizon: timedelta) -> Fleet:
        heaters, heater = np.unique(rows.device_ids, return_inverse=True)
        days = np.unique(heater.astype(np.int64) << 32 | rows.window_ends.astype("datetime64[D]").astype(np.int64))
        months = np.bincount((days >> 32).astype(np.int64), minlength=heaters.size) / DAYS_PER_MONTH
        failures = rows.failures
        if failures is None:
            raise ValueError("reliability figures need the failures the rows were labelled from")
        start = rows.window_ends.min()
        keys = heater.astype(np.int64) * _SPAN + (rows.window_ends - start).astype("timedelta64[s]").astype(np.int64)
        order = np.argsort(keys, kind="stable")
        known = np.isin(failures.device, heaters) & (failures.time >= start)  # earlier ones follow no dispatch
        return cls(
            heater=heater,
            heaters=heaters,
            window_ends=rows.window_ends,
            months=months,
            failure_heater=np.searchsorted(heaters, failures.device[known]),
            failure_time=failures.time[known],
            failure_label=failures.label[known],
            horizon=np.timedelta64(int(horizon.total_seconds()), "s"),
            start=start,
            until=rows.window_ends.max(),
            order=order,
            sorted_keys=keys[order],
        )


@dataclass(frozen=True)
class Outcome:
    """One component's dispatches at one threshold, as per-heater counts (what the bootstrap resamples)."""

    failures: np.ndarray  # countable failures per heater
    caught: np.ndarray
    false: np.ndarray  # false dispatches per heater
    early: np.ndarray  # judged false dispatches that a failure of the component followed within EARLY_WARNING
    judged: np.ndarray  # false dispatches whose EARLY_WARNING after them lies inside the observed period
    early_seen: np.ndarray  # false dispatches a known failure of the component followed within EARLY_WARNING
    true: np.ndarray
    lead_days: np.ndarray  # per caught failure


_SPAN = np.int64(1) << 40  # seconds: heaters' keys never overlap (a period is far shorter than 2**40 s)


def _keys(fleet: Fleet, heater: np.ndarray, time: np.ndarray) -> np.ndarray:
    """(heater, time) on one sortable axis."""
    return heater.astype(np.int64) * _SPAN + (time - fleet.start).astype("timedelta64[s]").astype(np.int64)


def _dispatches(fleet: Fleet, alarm: np.ndarray) -> np.ndarray:
    """Sorted keys of the dispatches: a heater's first alarm, then its first alarm a horizon after the last. One
    vectorised step per round of dispatches (every heater's next at once), not per alarm nor per dispatch."""
    keys = fleet.sorted_keys[alarm[fleet.order]]
    if not keys.size:
        return keys
    heater = keys // _SPAN
    cooldown = fleet.horizon.astype(np.int64)
    current = np.flatnonzero(np.r_[True, heater[1:] != heater[:-1]])  # each heater's first alarm
    chosen = []
    while current.size:
        chosen.append(keys[current])
        following = np.searchsorted(keys, keys[current] + cooldown, side="left")
        same = following < keys.size
        same[same] = heater[following[same]] == heater[current[same]]
        current = following[same]
    return np.sort(np.concatenate(chosen))


def outcome(fleet: Fleet, component: str, score: np.ndarray, threshold: float) -> Outcome:
    """Dispatches of ``component`` where ``score >= threshold``, judged against the known failures."""
    mine = fleet.failure_label == CLASSES.index(component)
    f_keys = np.sort(_keys(fleet, fleet.failure_heater[mine], fleet.failure_time[mine]))
    d_keys = _dispatches(fleet, score >= threshold)
    horizon = fleet.horizon.astype(np.int64)
    # per dispatch, seconds to the next failure of the component on the same heater
    following = np.searchsorted(f_keys, d_keys, side="right")
    gap = np.full(d_keys.size, np.inf)
    has = following < f_keys.size
    has[has] = f_keys[following[has]] // _SPAN == d_keys[has] // _SPAN
    gap[has] = f_keys[following[has]] - d_keys[has]
    true = gap <= horizon
    # whether a false dispatch was early can be told only if the failures of its next 90 days are known: rows are
    # labelled only once their horizon has passed, so failures are known until a horizon after the last row
    observed = (fleet.until - fleet.start).astype("timedelta64[s]").astype(np.int64) + horizon
    judged = ~true & (d_keys % _SPAN + int(EARLY_WARNING.total_seconds()) <= observed)
    early = judged & (gap <= EARLY_WARNING.total_seconds())
    # per countable failure, the first dispatch within the horizon before it
    period = (fleet.until - fleet.start).astype("timedelta64[s]").astype(np.int64)
    countable_keys = f_keys[(f_keys % _SPAN >= horizon) & (f_keys % _SPAN <= period)]
    first = np.searchsorted(d_keys, countable_keys - horizon, side="left")
    first_key = d_keys[np.minimum(first, max(d_keys.size - 1, 0))] if d_keys.size else np.zeros(0, np.int64)
    caught = (first < d_keys.size) & (first_key < countable_keys) if d_keys.size else np.zeros(0, bool)
    size = fleet.heaters.size
    return Outcome(
        failures=np.bincount(countable_keys // _SPAN, minlength=size),
        caught=np.bincount(countable_keys[caught] // _SPAN, minlength=size),
        false=np.bincount(d_keys[~true] // _SPAN, minlength=size),
        early=np.bincount(d_keys[early] // _SPAN, minlength=size),
        judged=np.bincount(d_keys[judged] // _SPAN, minlength=size),
        early_seen=np.bincount(d_keys[~true & (gap <= EARLY_WARNING.total_seconds())] // _SPAN, minlength=size),
        true=np.bincount(d_keys[true] // _SPAN, minlength=size),
        lead_days=(countable_keys[caught] - first_key[caught]) / 86400,
    )


def threshold_at_budget(fleet: Fleet, component: str, score: np.ndarray, budget: float) -> float:
    """The lowest score threshold whose false dispatches per 100 heater-months stay within ``budget`` (binary
    search over the scores: more alarms rarely mean fewer false dispatches); inf when even the top score is over."""
    values = np.unique(score[np.isfinite(score)])
    high = _index_at_budget(fleet, component, score, values, budget, values.size)
    return float(values[high]) if high < values.size else float("inf")


def _index_at_budget(
    fleet: Fleet, component: str, score: np.ndarray, values: np.ndarray, budget: float, high: int
) -> int:
    """The lowest index into the sorted ``values`` below ``high`` whose threshold meets ``budget`` (else ``high``)."""
    allowed = budget * fleet.months.sum() / 100
    low = 0  # values[high:] meet the budget
    while low < high:
        mid = (low + high) // 2
        if outcome(fleet, component, score, values[mid]).false.sum() <= allowed:
            high = mid
        else:
            low = mid + 1
    return high


def shared_budget(fleet: Fleet, scores: np.ndarray, budget: float, intervals: bool = False) -> dict:
    """Recall when the components share one budget of ``len(COMPONENTS) × budget``: split between them in steps of
    ``SHARED_STEP × budget`` so as to catch the most failures (fewest false dispatches among equals). A scorer whose
    failures concentrate in a few components spends the budget where they are, as a utility's planner would."""
    steps = round(len(COMPONENTS) / SHARED_STEP)
    curves: list[list[Outcome]] = []
    for column, component in enumerate(COMPONENTS):
        score = scores[:, column]
        values = np.unique(score[np.isfinite(score)])
        curve, high = [], values.size
        for k in range(steps + 1):  # more budget, lower threshold: each search starts below the last
            high = _index_at_budget(fleet, component, score, values, k * SHARED_STEP * budget, high)
            curve.append(outcome(fleet, component, score, values[high] if high < values.size else np.inf))
        curves.append(curve)
    # best[u]: (caught, -false, allotment) over the components so far with u steps spent
    best: list[tuple[int, int, tuple[int, ...]]] = [(0, 0, ())] * (steps + 1)
    for curve in curves:
        gains = [(int(o.caught.sum()), -int(o.false.sum())) for o in curve]
        best = [
            max(
                (best[u - k][0] + gains[k][0], best[u - k][1] + gains[k][1], (*best[u - k][2], k)) for k in range(u + 1)
            )
            for u in range(steps + 1)
        ]
    allotment = best[steps][2]
    chosen = [curve[k] for curve, k in zip(curves, allotment, strict=True)]
    figures = _figures(fleet, chosen, intervals)
    figures["budget_per_component"] = {
        c: round(k * SHARED_STEP * budget, 4) for c, k in zip(COMPONENTS, allotment, strict=True)
    }
    return figures


def time_to_failure(fleet: Fleet, scores: np.ndarray, thresholds: list[float | None]) -> dict:
    """The time-to-failure view beside the 14-day classification: the alarmed rows (at ``thresholds``, one per
    component) by days to the next failure of their component on their heater, as shares per bin. Only rows whose
    ``EARLY_WARNING`` after them lies inside the observed period (a horizon past the last row) are counted."""
    observed_until = fleet.until + fleet.horizon
    judgeable = fleet.window_ends + np.timedelta64(int(EARLY_WARNING.total_seconds()), "s") <= observed_until
    edges = np.array(TIME_TO_FAILURE_DAYS, np.float64)
    lows = (0, *(d + 1 for d in TIME_TO_FAILURE_DAYS[:-1]))
    names = [f"{low}-{high}d" for low, high in zip(lows, TIME_TO_FAILURE_DAYS, strict=True)]
    names.append(f"none_within_{int(edges[-1])}d")
    total = np.zeros(len(names), np.int64)
    per_component = {}
    for column, (component, threshold) in enumerate(zip(COMPONENTS, thresholds, strict=True)):
        alarm = judgeable & (scores[:, column] >= (np.inf if threshold is None else threshold))
        mine = fleet.failure_label == CLASSES.index(component)
        f_keys = np.sort(_keys(fleet, fleet.failure_heater[mine], fleet.failure_time[mine]))
        r_keys = _keys(fleet, fleet.heater[alarm], fleet.window_ends[alarm])
        following = np.searchsorted(f_keys, r_keys, side="right")
        days = np.full(r_keys.size, np.inf)
        has = following < f_keys.size
        has[has] = f_keys[following[has]] // _SPAN == r_keys[has] // _SPAN
        days[has] = (f_keys[following[has]] - r_keys[has]) / 86400
        counts = np.bincount(np.searchsorted(edges, days, side="left"), minlength=len(names))
        total += counts
        per_component[component] = _bins(names, counts)
    left_out = int(sum((scores[~judgeable, c] >= (np.inf if t is None else t)).sum() for c, t in enumerate(thresholds)))
    return {"overall": _bins(names, total), "per_component": per_component, "alarmed_rows_not_judged": left_out}


def _bins(names: list[str], counts: np.ndarray) -> dict:
    rows = int(counts.sum())
    shares = {n: round(float(c) / rows, 4) if rows else None for n, c in zip(names, counts, strict=True)}
    return {"alarmed_rows": rows, **shares}


def _ratio(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0) -> float | None:
    total = float(np.sum(denominator))
    return round(scale * float(np.sum(numerator)) / total, 4) if total else None


def ratio_interval(numerator: np.ndarray, denominator: np.ndarray, scale: float = 1.0) -> list[float] | None:
    """Percentile bootstrap interval of ``scale * sum(numerator) / sum(denominator)``, resampling heaters (one
    entry of each array per heater). A resample without any denominator (no failing heater drawn) has no ratio
    and is left out of the percentiles; None when one in ten lacks one, or under two heaters carry a denominator."""
    if np.count_nonzero(denominator) < 2:
        return None

    def statistic(num: np.ndarray, den: np.ndarray, axis: int = -1) -> np.ndarray:
        total = den.sum(axis=axis)
        return scale * num.sum(axis=axis) / np.where(total > 0, total, np.nan)

    with warnings.catch_warnings():  # scipy warns of the NaN resamples its own interval would hold; left out below
        warnings.simplefilter("ignore", DegenerateDataWarning)
        result = bootstrap(
            (np.asarray(numerator, np.float64), np.asarray(denominator, np.float64)),
            statistic,
            paired=True,
            vectorized=True,
            n_resamples=RESAMPLES,
            confidence_level=CONFIDENCE,
            method="percentile",
            rng=np.random.default_rng(0),
        )
    ratios = result.bootstrap_distribution
    if np.isnan(ratios).mean() > 0.1:
        return None
    tail = 100 * (1 - CONFIDENCE) / 2
    low, high = np.nanpercentile(ratios, [tail, 100 - tail])
    return [round(float(low), 4), round(float(high), 4)]


def _figures(fleet: Fleet, outcomes: list[Outcome], intervals: bool) -> dict:
    """Recall, false dispatches per 1,000 heater-months and the early-warning share of some outcomes pooled."""
    failures = sum(o.failures for o in outcomes)
    caught = sum(o.caught for o in outcomes)
    false = sum(o.false for o in outcomes)
    early = sum(o.early for o in outcomes)
    judged = sum(o.judged for o in outcomes)
    figures = {
        "failures": int(failures.sum()),
        "caught": int(caught.sum()),
        "recall": _ratio(caught, failures),
        "false_dispatches": int(false.sum()),
        "true_dispatches": int(sum(o.true for o in outcomes).sum()),
        "false_per_1000_heater_months": _ratio(false, fleet.months, 1000),
        "false_dispatches_judged": int(judged.sum()),
        "early_warning_share": _ratio(early, judged),
        # every false dispatch, judged or not: those whose 90 days are not over may be early yet
        "early_warning_share_at_least": _ratio(sum(o.early_seen for o in outcomes), false),
    }
    if intervals:
        figures["recall_ci"] = ratio_interval(caught, failures)
        figures["false_per_1000_heater_months_ci"] = ratio_interval(false, fleet.months, 1000)
    return figures


def lead_time_days(lead_days: np.ndarray) -> dict:
    """Percentiles of the days of warning the caught failures had."""
    if not lead_days.size:
        return {"caught": 0}
    values = np.percentile(lead_days, LEAD_TIME_PERCENTILES)
    return {"caught": int(lead_days.size)} | {
        f"p{p}": round(float(v), 2) for p, v in zip(LEAD_TIME_PERCENTILES, values, strict=True)
    }


def at_budget(fleet: Fleet, scores: np.ndarray, budget: float, intervals: bool = False) -> dict:
    """Per component and overall: the threshold meeting the budget and what dispatching at it would do."""
    per_component, outcomes = {}, []
    for column, component in enumerate(COMPONENTS):
        threshold = threshold_at_budget(fleet, component, scores[:, column], budget)
        result = outcome(fleet, component, scores[:, column], threshold)
        outcomes.append(result)
        per_component[component] = {
            "threshold": None if np.isinf(threshold) else round(threshold, 6),
            **_figures(fleet, [result], intervals),
            "lead_time_days": lead_time_days(result.lead_days),
        }
    overall = _figures(fleet, outcomes, intervals)
    overall["lead_time_days"] = lead_time_days(np.concatenate([o.lead_days for o in outcomes]))
    return {"overall": overall, "per_component": per_component}


def ranking(targets: np.ndarray, scores: np.ndarray) -> dict:
    """Per-component ROC and PR AUC of a scorer (rows, as the classification view sees them)."""
    result = {}
    for column, component in enumerate(COMPONENTS):
        y = targets == CLASSES.index(component)
        if 0 < y.sum() < y.size:
            result[component] = {
                "roc_auc": round(float(roc_auc_score(y, scores[:, column])), 4),
                "pr_auc": round(float(average_precision_score(y, scores[:, column])), 4),
            }
    return result


def calibration(targets: np.ndarray, p_failure: np.ndarray) -> dict:
    """Brier score (with a by-heater interval) and the reliability curve of P(any failure within the horizon)."""
    y = (targets > 0).astype(np.int64)
    observed, mean_predicted = calibration_curve(y, p_failure, n_bins=CALIBRATION_BINS, strategy="uniform")
    edges = np.linspace(0, 1, CALIBRATION_BINS + 1)
    counts = np.histogram(p_failure, bins=edges)[0]
    bins = [
        {"from": round(float(edges[i]), 2), "to": round(float(edges[i + 1]), 2), "rows": int(counts[i])}
        for i in range(CALIBRATION_BINS)
        if counts[i]
    ]
    for entry, predicted, seen in zip(bins, mean_predicted, observed, strict=True):
        entry.update(mean_predicted=round(float(predicted), 4), observed=round(float(seen), 4))
    return {"brier": round(float(brier_score_loss(y, p_failure)), 5), "reliability_curve": bins}


def brier_interval(heater: np.ndarray, targets: np.ndarray, p_failure: np.ndarray, heaters: int) -> list[float] | None:
    squared = (p_failure - (targets > 0)) ** 2
    return ratio_interval(np.bincount(heater, squared, heaters), np.bincount(heater, minlength=heaters))


def firmware_scores(rows: LabelledRows) -> np.ndarray:
    """The firmware's own error-code counts as scores: they report a failure, they do not foresee one."""
    columns = [rows.feature_names.index(FIRMWARE_FEATURE.format(c)) for c in COMPONENTS]
    return np.nan_to_num(rows.values[:, columns].astype(np.float64), nan=0.0)


@dataclass(frozen=True)
class Rule:
    """One feature, read in one direction (sign -1: lower values are worse), chosen per component."""

    feature: str
    sign: float
    pr_auc: float


def best_single_feature_rules(training: LabelledRows) -> dict[str, Rule]:
    """Per component, the feature and direction whose value alone ranks the training rows best (PR AUC)."""
    rules = {}
    values = np.nan_to_num(training.values.astype(np.float64), nan=0.0)
    for component in COMPONENTS:
        y = training.targets == CLASSES.index(component)
        if not 0 < y.sum() < y.size:
            continue
        best = max(
            (average_precision_score(y, sign * values[:, j]), name, sign)
            for j, name in enumerate(training.feature_names)
            for sign in (1.0, -1.0)
        )
        rules[component] = Rule(best[1], best[2], round(float(best[0]), 4))
    return rules


def rule_scores(rules: dict[str, Rule], rows: LabelledRows) -> np.ndarray:
    """Each component's rule applied to ``rows`` (a component without a rule scores 0 everywhere: no ranking)."""
    values = np.nan_to_num(rows.values.astype(np.float64), nan=0.0)
    scores = np.zeros((len(rows), len(COMPONENTS)))
    for column, component in enumerate(COMPONENTS):
        if component in rules:
            rule = rules[component]
            scores[:, column] = rule.sign * values[:, rows.feature_names.index(rule.feature)]
    return scores


def _split(rows: LabelledRows, horizon: timedelta, scores: np.ndarray, thresholds: list, mask: np.ndarray) -> dict:
    """The figures at fixed thresholds on part of the rows (its own heater-months and countable failures)."""
    part = Fleet.of(rows.take(mask), horizon)
    outcomes = [
        outcome(part, c, scores[mask, i], np.inf if t is None else t)
        for i, (c, t) in enumerate(zip(COMPONENTS, thresholds, strict=True))
    ]
    return {"heater_months": round(float(part.months.sum()), 1), **_figures(part, outcomes, intervals=False)}


def splits(fleet: Fleet, rows: LabelledRows, horizon: timedelta, scores: np.ndarray, thresholds: list) -> dict:
    """The model's figures at its budget thresholds in the earlier and later half of the period, and on two
    halves of the heaters (a stable split of their ids): how much they move from one slice to another."""
    middle = fleet.start + (fleet.until - fleet.start) / 2
    half = np.array([hash_half(d) for d in fleet.heaters])[fleet.heater]
    return {
        "time": {
            "earlier_half": _split(rows, horizon, scores, thresholds, rows.window_ends < middle),
            "later_half": _split(rows, horizon, scores, thresholds, rows.window_ends >= middle),
        },
        "heater": {
            "heaters_a": _split(rows, horizon, scores, thresholds, half == 0),
            "heaters_b": _split(rows, horizon, scores, thresholds, half == 1),
        },
    }


def hash_half(device_id: str) -> int:
    """0 or 1 for a heater, the same on every run (Python's ``hash`` of a str changes between runs)."""
    return zlib.crc32(str(device_id).encode()) % 2


def report(
    rows: LabelledRows,
    proba: np.ndarray,
    horizon: timedelta,
    budget: float = DEFAULT_BUDGET,
    training: LabelledRows | None = None,
    logistic: Callable[[LabelledRows, LabelledRows], np.ndarray] | None = None,
) -> dict:
    """Every reliability figure of the model's ``proba`` (one column per entry of CLASSES) on ``rows``, side by
    side with the baselines. Baselines that learn (single-feature rules, ``logistic``) need the ``training`` slice
    and never see ``rows`` while choosing."""
    fleet = Fleet.of(rows, horizon)
    model = proba[:, 1:]
    model_budget = at_budget(fleet, model, budget, intervals=True)
    thresholds = [model_budget["per_component"][c]["threshold"] for c in COMPONENTS]
    p_failure = np.clip(1 - proba[:, 0], 0.0, 1.0)  # float32 probabilities sum to 1 only within rounding
    figures = calibration(rows.targets, p_failure)
    figures["brier_ci"] = brier_interval(fleet.heater, rows.targets, p_failure, fleet.heaters.size)
    baselines: dict[str, dict] = {"firmware_error_codes": _scorer(fleet, rows.targets, firmware_scores(rows), budget)}
    if training is None or not (training.targets > 0).any():
        skipped = "needs the training slice, with failures in it (its lineage names it)"
        baselines["single_feature_rule"] = {"skipped": skipped}
        baselines["logistic_regression"] = {"skipped": skipped}
    else:
        rules = best_single_feature_rules(training)
        baselines["single_feature_rule"] = _scorer(fleet, rows.targets, rule_scores(rules, rows), budget)
        baselines["single_feature_rule"]["rules"] = {
            c: {"feature": r.feature, "direction": "high" if r.sign > 0 else "low", "training_pr_auc": r.pr_auc}
            for c, r in rules.items()
        }
        if logistic is not None:
            scores = logistic(training, rows)
            baselines["logistic_regression"] = _scorer(fleet, rows.targets, scores, budget)
            baselines["logistic_regression"]["brier"] = calibration(rows.targets, np.clip(scores.sum(1), 0, 1))["brier"]
    return {
        "budget_false_per_100_heater_months": budget,
        "heater_months": round(float(fleet.months.sum()), 1),
        "heaters": int(fleet.heaters.size),
        "early_warning_days": EARLY_WARNING.days,
        "at_budget": model_budget,
        "shared_budget": shared_budget(fleet, model, budget, intervals=True),
        "time_to_failure": time_to_failure(fleet, model, thresholds),
        **figures,
        "splits": splits(fleet, rows, horizon, model, thresholds),
        "baselines": baselines,
    }


def _scorer(fleet: Fleet, targets: np.ndarray, scores: np.ndarray, budget: float) -> dict:
    return {
        "ranking": ranking(targets, scores),
        "at_budget": at_budget(fleet, scores, budget, intervals=True),
        "shared_budget": shared_budget(fleet, scores, budget, intervals=True),
    }


def baseline_verdict(figures: dict) -> tuple[bool, str]:
    """Whether the model beats the baselines where it counts: at the shared budget (``shared_budget``), no
    baseline catches more of the held-out failures than the model does. Why there: docs/evaluation.md."""
    model = figures["shared_budget"]
    shared = len(COMPONENTS) * figures["budget_false_per_100_heater_months"]
    where = f"with {shared:g} false dispatches per 100 heater-months shared between the components"
    if model["failures"] < MIN_FAILURES_TO_COMPARE:
        return True, (
            f"baselines not compared: {model['failures']} countable held-out failures "
            f"(at least {MIN_FAILURES_TO_COMPARE} needed)"
        )
    compared = {n: b["shared_budget"] for n, b in figures["baselines"].items() if "shared_budget" in b}
    if not compared:
        return True, "no baseline could be scored"
    best, theirs = max(compared.items(), key=lambda item: (item[1]["caught"], -item[1]["false_dispatches"]))
    if theirs["caught"] > model["caught"]:
        return False, (
            f"baseline {best} catches {theirs['caught']} of {theirs['failures']} held-out failures {where}, "
            f"the model {model['caught']}"
        )
    return True, (
        f"the model catches {model['caught']} of {model['failures']} held-out failures {where}, "
        f"no fewer than any baseline (best: {best}, {theirs['caught']})"
    )


def data_line(data: dict) -> str:
    """Which fleet and labels a figure comes from: an accelerated fleet's figures are read with its factor."""
    from firmware_sim.calibration import calibration

    labels = f"; labels from {data['labels'].replace('_', ' ')}" if "labels" in data else ""
    return f"{calibration(data['calibration']).describe()}{labels}"


def _early(figures: dict) -> str:
    """The early-warning share where judged, else its lower bound from the failures known so far."""
    if figures["early_warning_share"] is not None:
        return _pct(figures["early_warning_share"])
    at_least = figures.get("early_warning_share_at_least")
    return "n/a" if at_least is None else f"≥{_pct(at_least)}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _interval(values: list[float] | None, scale: float = 1.0, digits: int = 0) -> str:
    return "" if not values else f" [{scale * values[0]:.{digits}f}–{scale * values[1]:.{digits}f}]"


def _line(name: str, figures: dict) -> str:
    lead = figures.get("lead_time_days", {})
    median = f", median lead {lead['p50']:.1f} d" if "p50" in lead else ""
    return (
        f"  {name:22s} recall {_pct(figures['recall'])}{_interval(figures.get('recall_ci'), 100)} "
        f"({figures['caught']}/{figures['failures']}), "
        f"{_number(figures['false_per_1000_heater_months'])} false/1,000 heater-months"
        f"{_interval(figures.get('false_per_1000_heater_months_ci'), digits=1)}, "
        f"early warnings {_early(figures)} of false{median}"
    )


def summary_lines(figures: dict, data: dict | None = None) -> list[str]:
    """A reliability report (``report``) as lines a person reads: the model beside each baseline at the budget;
    first the fleet the figures came from (``data``: its calibration and label source), when known."""
    lines = [] if not data else [data_line(data)]
    lines += [
        f"at {figures['budget_false_per_100_heater_months']} false dispatch per 100 heater-months per component "
        f"({figures['heaters']} heaters, {figures['heater_months']} heater-months; 95% intervals by heater):",
        _line("model", figures["at_budget"]["overall"]),
    ]
    for component, entry in figures["at_budget"]["per_component"].items():
        lines.append("  " + _line(component, entry))
    for name, baseline in figures["baselines"].items():
        lines.append(
            _line(name, baseline["at_budget"]["overall"])
            if "at_budget" in baseline
            else f"  {name:22s} {baseline['skipped']}"
        )
    shared = len(COMPONENTS) * figures["budget_false_per_100_heater_months"]
    lines.append(f"sharing {shared:g} false dispatches per 100 heater-months between the components:")
    lines.append(_line("model", figures["shared_budget"]))
    for name, baseline in figures["baselines"].items():
        if "shared_budget" in baseline:
            lines.append(_line(name, baseline["shared_budget"]))
    view = figures["time_to_failure"]["overall"]
    bins = ", ".join(f"{k} {_pct(v)}" for k, v in view.items() if k != "alarmed_rows")
    lines.append(
        f"alarmed rows by days to their component's next failure ({view['alarmed_rows']} rows; "
        f"{figures['time_to_failure']['alarmed_rows_not_judged']} too late in the period to tell): {bins}"
    )
    lead = figures["at_budget"]["overall"]["lead_time_days"]
    if "p50" in lead:
        lines.append("lead time (days) " + ", ".join(f"p{p} {lead[f'p{p}']}" for p in LEAD_TIME_PERCENTILES))
    curve = ", ".join(
        f"{b['mean_predicted']:.2f}→{b['observed']:.2f} ({b['rows']})" for b in figures["reliability_curve"]
    )
    lines.append(f"Brier {figures['brier']}{_interval(figures.get('brier_ci'), digits=4)}; predicted→observed: {curve}")
    for split, parts in figures["splits"].items():
        lines.append(
            f"by {split}: "
            + "; ".join(
                f"{part} recall {_pct(f['recall'])}, {_number(f['false_per_1000_heater_months'])} false/1,000 hm"
                for part, f in parts.items()
            )
        )
    return lines
