"""Reliability figures on hand-made fleets whose dispatches, failures and months can be counted by hand."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from cloud.training import reliability
from cloud.training.component_failure import _logistic_baseline
from cloud.training.data import LabelledRows
from cloud.training.labels import CLASSES, FailureTimes
from shared.messages import PredictionType

HORIZON = timedelta(days=14)
T0 = np.datetime64("2026-01-01T00:00:00", "s")
SEDIMENT = CLASSES.index("sediment")
DAY = np.timedelta64(1, "D")


def _fleet_rows(heaters: int, days: int, failures: list[tuple[int, int, str]], values: np.ndarray | None = None):
    """One row a day per heater (ids h000…), and ``failures`` as (heater, day, component)."""
    device_ids = np.repeat([f"h{h:03d}" for h in range(heaters)], days)
    window_ends = np.tile(T0 + np.arange(days) * DAY, heaters).astype("datetime64[s]")
    known = FailureTimes(
        device=np.array([f"h{h:03d}" for h, _, _ in failures], dtype=object),
        time=np.array([T0 + d * DAY for _, d, _ in failures], dtype="datetime64[s]"),
        label=np.array([CLASSES.index(c) for _, _, c in failures], dtype=np.int64),
    )
    names = ["wear", "noise", *(reliability.FIRMWARE_FEATURE.format(c) for c in reliability.COMPONENTS)]
    return LabelledRows(
        prediction_type=PredictionType.COMPONENT_FAILURE,
        feature_names=names,
        feature_set_version="test",
        device_ids=device_ids,
        window_ends=window_ends,
        values=np.zeros((device_ids.size, len(names)), np.float32) if values is None else values,
        targets=np.zeros(device_ids.size, np.int64),
        failures=known,
    )


def _score(rows: LabelledRows, alarms: dict[str, list[int]]) -> np.ndarray:
    """Score 1 on the listed days of each heater, else 0."""
    score = np.zeros(len(rows))
    day = ((rows.window_ends - T0) / DAY).astype(int)
    for heater, days in alarms.items():
        score[(rows.device_ids == heater) & np.isin(day, days)] = 1.0
    return score


def test_dispatches_failures_early_warnings_and_lead_times_count_as_a_technician_would():
    # 120 days of three heaters; h000's sediment fails on day 40, h001's on day 150 (after the rows: only judges
    # dispatches), h002's on day 5 (too early in the period to count: its horizon before is not in the rows)
    rows = _fleet_rows(3, 120, [(0, 40, "sediment"), (1, 150, "sediment"), (2, 5, "sediment")])
    fleet = reliability.Fleet.of(rows, HORIZON)
    assert fleet.months.tolist() == pytest.approx([120 / reliability.DAYS_PER_MONTH] * 3)
    # h000 alarms every day from 10 to 45: dispatches on day 10 (false: the failure is 30 days on, an early
    # warning), 24 (16 days on: false, early) and 38 (true: caught with 2 days of warning); the alarms on 39-45
    # fall within 38's cooldown. h001 alarms on day 2: false, and its failure 148 days on is too far to be early.
    # h002 alarms on day 110: false, but failures are known only until day 133 (a horizon past the last row), so
    # whether it was early cannot be told: it is not judged, and the early-warning share leaves it out.
    score = _score(rows, {"h000": list(range(10, 46)), "h001": [2], "h002": [110]})
    result = reliability.outcome(fleet, "sediment", score, 0.5)
    assert result.failures.tolist() == [1, 0, 0]  # h002's day-5 failure and h001's day-150 one do not count
    assert result.caught.tolist() == [1, 0, 0]
    assert result.true.tolist() == [1, 0, 0]
    assert result.false.tolist() == [2, 1, 1]
    assert result.judged.tolist() == [2, 1, 0]
    assert result.early.tolist() == [2, 0, 0]
    assert result.early_seen.tolist() == [2, 0, 0]  # h002's may be early yet: no failure is known after it
    assert result.lead_days.tolist() == [2.0]
    figures = reliability._figures(fleet, [result], intervals=False)
    assert figures["recall"] == 1.0 and figures["false_dispatches"] == 4 and figures["false_dispatches_judged"] == 3
    assert figures["early_warning_share"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["early_warning_share_at_least"] == pytest.approx(2 / 4, abs=1e-4)
    assert figures["false_per_1000_heater_months"] == pytest.approx(4 / (360 / reliability.DAYS_PER_MONTH) * 1000, 1e-4)
    # another component's alarms do not catch a sediment failure
    assert reliability.outcome(fleet, "tank_leak", score, 0.5).caught.sum() == 0


def test_the_time_to_failure_view_bins_alarms_by_days_to_their_components_next_failure():
    # 200 days of two heaters; h000's sediment fails on day 100 and its tank leaks on day 50
    rows = _fleet_rows(2, 200, [(0, 100, "sediment"), (0, 50, "tank_leak")])
    fleet = reliability.Fleet.of(rows, HORIZON)
    # sediment alarms on days 95 (5 days before: 0-14), 80 (20: 15-30), 60 (40: 31-60), 20 (80: 61-90) and 5
    # (95: none within 90); h001 alarms on day 30 (never fails); day 150's alarm is left out (its 90 days run
    # past day 213, the end of what is known) and the tank_leak failure does not count for sediment alarms
    scores = np.zeros((len(rows), len(reliability.COMPONENTS)))
    scores[:, reliability.COMPONENTS.index("sediment")] = _score(rows, {"h000": [95, 80, 60, 20, 5, 150], "h001": [30]})
    view = reliability.time_to_failure(fleet, scores, [0.5] * len(reliability.COMPONENTS))
    sediment = view["per_component"]["sediment"]
    assert sediment == {
        "alarmed_rows": 6,
        "0-14d": pytest.approx(1 / 6, abs=1e-4),
        "15-30d": pytest.approx(1 / 6, abs=1e-4),
        "31-60d": pytest.approx(1 / 6, abs=1e-4),
        "61-90d": pytest.approx(1 / 6, abs=1e-4),
        "none_within_90d": pytest.approx(2 / 6, abs=1e-4),
    }
    assert view["overall"] == sediment  # no other component alarmed
    assert view["alarmed_rows_not_judged"] == 1
    assert view["per_component"]["tank_leak"]["alarmed_rows"] == 0


def test_a_shared_budget_goes_where_the_failures_are():
    # 20 heaters × 120 days (about 79 heater-months): with a budget of 1 per 100 heater-months per component no
    # component may spend a single false dispatch, while the five components sharing 5 may spend 3 between them.
    # Sediment fails on five heaters and a perfect scorer catches each one at the cost of one false dispatch (it
    # alarms 20 days before too); nothing else fails, so the shared budget goes to sediment and catches 3 of 5.
    failing = [(h, 60, "sediment") for h in range(5)]
    rows = _fleet_rows(20, 120, failing)
    fleet = reliability.Fleet.of(rows, HORIZON)
    scores = np.zeros((len(rows), len(reliability.COMPONENTS)))
    column = reliability.COMPONENTS.index("sediment")
    for rank, heater in enumerate(range(5)):  # higher scores first: a lower threshold adds one heater at a time
        alarms = _score(rows, {f"h{heater:03d}": [40, 55]})
        scores[:, column] = np.maximum(scores[:, column], alarms * (10 - rank))
    per_component = reliability.at_budget(fleet, scores, 1.0)
    assert per_component["per_component"]["sediment"]["caught"] == 0  # 0.79 false dispatches allowed: none
    shared = reliability.shared_budget(fleet, scores, 1.0)
    assert shared["caught"] == 3 and shared["failures"] == 5 and shared["false_dispatches"] == 3
    assert shared["budget_per_component"]["sediment"] == 4.0  # 3 false dispatches need 3.8 per 100 heater-months
    assert sum(shared["budget_per_component"].values()) <= 5.0


def test_the_budget_threshold_is_the_lowest_that_keeps_false_dispatches_within_it():
    rows = _fleet_rows(10, 61, [(0, 40, "sediment")])
    fleet = reliability.Fleet.of(rows, HORIZON)  # 20.04 heater-months
    score = _score(rows, {"h000": [30]})  # the failing heater: 0.9 ten days before its failure
    score[score > 0] = 0.9
    score[(rows.device_ids == "h001") & (rows.window_ends == T0 + 3 * DAY)] = 0.5  # one false alarm at 0.5
    score[(rows.device_ids == "h002") & (rows.window_ends == T0 + 3 * DAY)] = 0.7  # one at 0.7
    # 5 per 100 heater-months allows one false dispatch: 0.7 (h002's) is the lowest threshold within it
    assert reliability.threshold_at_budget(fleet, "sediment", score, 5.0) == 0.7
    assert reliability.threshold_at_budget(fleet, "sediment", score, 10.0) == 0.5  # two allowed
    assert reliability.threshold_at_budget(fleet, "sediment", score, 1.0) == 0.9  # none allowed
    budget = reliability.at_budget(fleet, score[:, None].repeat(len(reliability.COMPONENTS), axis=1), 5.0)
    assert budget["per_component"]["sediment"]["recall"] == 1.0
    assert budget["per_component"]["sediment"]["false_dispatches"] == 1


def _interval_width(heaters: int) -> tuple[float, list[float]]:
    rng = np.random.default_rng(1)
    failures = rng.poisson(2, heaters)
    caught = rng.binomial(failures, 0.7)
    point = caught.sum() / failures.sum()
    low, high = reliability.ratio_interval(caught, failures)
    assert low <= point <= high
    return high - low, [low, high]


def test_intervals_resampled_by_heater_hold_the_estimate_and_narrow_with_more_heaters():
    few, _ = _interval_width(40)
    many, _ = _interval_width(1000)
    assert 0 < many < few / 2
    assert reliability.ratio_interval(np.array([1, 0]), np.array([1, 0])) is None  # one heater: nothing to resample


def test_calibration_bins_count_rows_and_brier_is_the_mean_squared_error():
    targets = np.array([0, 0, 0, SEDIMENT, 0, SEDIMENT])
    p = np.array([0.05, 0.05, 0.15, 0.95, 0.95, 0.95])
    figures = reliability.calibration(targets, p)
    assert figures["brier"] == pytest.approx((2 * 0.05**2 + 0.15**2 + 2 * 0.05**2 + 0.95**2) / 6, abs=1e-5)
    assert [(b["from"], b["rows"], b["observed"]) for b in figures["reliability_curve"]] == [
        (0.0, 2, 0.0),
        (0.1, 1, 0.0),
        (0.9, 3, pytest.approx(2 / 3, abs=1e-4)),
    ]


def test_baselines_learn_on_the_training_slice_only():
    """In training "wear" foretells sediment, in the held-out rows "noise" does: baselines that peeked at the
    held-out rows would pick "noise" and rank them well."""
    rng = np.random.default_rng(0)

    def slice_where(informative: int) -> LabelledRows:
        rows = _fleet_rows(40, 60, [])
        targets = np.where(rng.random(len(rows)) < 0.05, SEDIMENT, 0)
        values = rng.normal(size=rows.values.shape).astype(np.float32)
        values[:, 2:] = 0  # no error codes
        values[:, informative] += 4 * (targets == SEDIMENT)
        return replace(rows, values=values, targets=targets)

    training, holdout = slice_where(0), slice_where(1)
    rules = reliability.best_single_feature_rules(training)
    assert (rules["sediment"].feature, rules["sediment"].sign) == ("wear", 1.0)
    sediment = reliability.COMPONENTS.index("sediment")
    by_rule = reliability.ranking(holdout.targets, reliability.rule_scores(rules, holdout))["sediment"]
    by_logistic = reliability.ranking(holdout.targets, _logistic_baseline(training, holdout))["sediment"]
    assert by_rule["roc_auc"] < 0.6 and by_logistic["roc_auc"] < 0.6
    peeked = reliability.ranking(holdout.targets, _logistic_baseline(holdout, holdout))["sediment"]
    assert peeked["roc_auc"] > 0.9  # the same baseline fitted on the held-out rows would have ranked them well
    assert reliability.firmware_scores(holdout)[:, sediment].max() == 0
