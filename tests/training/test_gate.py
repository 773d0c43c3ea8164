"""The champion/challenger gate refuses a failure model that a baseline beats where it counts, and says why."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np

from cloud.pipeline.training import baselines_gate, champion_gate
from cloud.training import reliability
from cloud.training.common import Evaluation
from cloud.training.labels import CLASSES
from tests.training.test_reliability import DAY, T0, _fleet_rows

HORIZON = timedelta(days=14)
SEDIMENT = CLASSES.index("sediment")


def _fleet_with_a_telling_feature(failing: int = 15):
    """40 heaters × 120 days; ``failing`` of them lose their sediment on day 60, and the feature ``wear`` is 1 on
    each of their ten days before it (a one-feature rule learns it from the training rows)."""
    rows = _fleet_rows(40, 120, [(h, 60, "sediment") for h in range(failing)])
    day = ((rows.window_ends - T0) / DAY).astype(int)
    heater = np.array([int(d[1:]) for d in rows.device_ids])
    doomed = heater < failing
    values = rows.values.copy()
    values[:, rows.feature_names.index("wear")] = (doomed & (day >= 50) & (day < 60)).astype(np.float32)
    targets = np.where(doomed & (day >= 46) & (day < 60), SEDIMENT, 0)
    return replace(rows, values=values, targets=targets)


def _proba(rows, sediment_score: np.ndarray) -> np.ndarray:
    proba = np.zeros((len(rows), len(CLASSES)))
    proba[:, SEDIMENT] = sediment_score
    proba[:, 0] = 1 - sediment_score
    return proba


def _challenger(rows, proba: np.ndarray) -> Evaluation:
    figures = reliability.report(rows, proba, HORIZON, training=rows)
    return Evaluation("mean_pr_auc", 0.5, {"reliability": figures}, len(rows))


def test_a_model_a_baseline_beats_at_the_shared_budget_is_refused_with_the_reason():
    rows = _fleet_with_a_telling_feature()
    blind = _challenger(rows, _proba(rows, np.full(len(rows), 0.01)))  # ranks nothing: catches no failure
    assert blind.metrics["reliability"]["baselines"]["single_feature_rule"]["shared_budget"]["caught"] == 15

    verdict = baselines_gate(champion_gate(blind, None, None, 0.01), blind)

    assert verdict.passed is False
    assert verdict.reason.startswith("baseline single_feature_rule catches 15 of 15 held-out failures with 5 false")
    assert "the model 0" in verdict.reason and "no production version to beat" in verdict.reason
    assert verdict.as_dict()["baselines"] == {"passed": False, "reason": verdict.reason.split("; ")[0]}


def test_a_model_that_catches_as_many_as_the_best_baseline_passes():
    rows = _fleet_with_a_telling_feature()
    sees = _challenger(rows, _proba(rows, rows.values[:, rows.feature_names.index("wear")].astype(np.float64)))

    verdict = baselines_gate(champion_gate(sees, None, None, 0.01), sees)

    assert verdict.passed is True
    assert verdict.details["baselines"]["reason"].startswith("the model catches 15 of 15 held-out failures")


def test_too_few_failures_to_tell_a_model_from_a_baseline_pass_and_say_so():
    rows = _fleet_with_a_telling_feature(failing=reliability.MIN_FAILURES_TO_COMPARE - 1)
    blind = _challenger(rows, _proba(rows, np.full(len(rows), 0.01)))

    verdict = baselines_gate(champion_gate(blind, None, None, 0.01), blind)

    assert verdict.passed is True
    assert verdict.details["baselines"]["reason"] == (
        f"baselines not compared: {reliability.MIN_FAILURES_TO_COMPARE - 1} countable held-out failures "
        f"(at least {reliability.MIN_FAILURES_TO_COMPARE} needed)"
    )


def test_other_model_types_keep_the_champion_gate_alone():
    usage = Evaluation("neg_mae", -3.0, {"mae": 3.0}, 100)
    verdict = champion_gate(usage, None, None, 0.01)
    assert baselines_gate(verdict, usage) == verdict
