"""The decision rule by simulation (fixed seeds): A/A false positives under continuous monitoring stay at alpha,
real differences are found at the planned size, and the intervals cover."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cloud.errors import Invalid
from cloud.experiments.stats import (
    DEFAULT_MIN_PER_ARM,
    ArmSummary,
    arm_interval,
    planned_per_arm,
    sequential_test,
)

ALPHA = 0.05
EXPERIMENTS = 2000
LOOK_EVERY = 25


def _looks(champion: np.ndarray, challenger: np.ndarray, last: int) -> list[list[ArmSummary]]:
    """Per experiment (row), the two arms' summaries at every look from the minimum sample to ``last``."""
    ns = np.arange(DEFAULT_MIN_PER_ARM, last + 1, LOOK_EVERY)
    looks = []
    for data in (champion, challenger):
        sums, squares = np.cumsum(data, axis=1)[:, ns - 1], np.cumsum(data**2, axis=1)[:, ns - 1]
        means = sums / ns
        variances = (squares - ns * means**2) / (ns - 1)
        looks.append((means, variances))
    return [
        [
            (
                ArmSummary(int(n), looks[0][0][e, j], looks[0][1][e, j]),
                ArmSummary(int(n), looks[1][0][e, j], looks[1][1][e, j]),
            )
            for j, n in enumerate(ns)
        ]
        for e in range(champion.shape[0])
    ]


def _ever_significant(champion: np.ndarray, challenger: np.ndarray, tau: float) -> np.ndarray:
    """Whether an operator concluding at the first significant look would have concluded, per experiment."""
    return np.array(
        [
            any((test := sequential_test(a, b, tau, ALPHA)) is not None and test.significant for a, b in experiment)
            for experiment in _looks(champion, challenger, champion.shape[1])
        ]
    )


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.5])
def test_aa_false_positive_rate_of_an_error_rate_under_continuous_monitoring_stays_at_alpha(rate: float):
    rng = np.random.default_rng(12)
    same = (
        (rng.random((EXPERIMENTS, 2000)) < rate).astype(float),
        (rng.random((EXPERIMENTS, 2000)) < rate).astype(float),
    )

    false_positives = _ever_significant(*same, tau=0.05).mean()

    # 79 looks each: a fixed-horizon z-test looked at this often calls about a third of them (0.34 at 0.2)
    assert false_positives <= ALPHA + 0.01


def test_aa_false_positive_rate_of_a_skewed_continuous_error_stays_at_alpha():
    rng = np.random.default_rng(7)
    same = rng.gamma(2.0, 10.0, (EXPERIMENTS, 1500)), rng.gamma(2.0, 10.0, (EXPERIMENTS, 1500))

    assert _ever_significant(*same, tau=5.0).mean() <= ALPHA + 0.01


def test_a_real_improvement_is_found_by_the_planned_sample_size():
    planned = planned_per_arm(0.2, None, effect=0.05, alpha=ALPHA, power=0.8, binary=True)
    rng = np.random.default_rng(3)
    champion = (rng.random((500, planned)) < 0.20).astype(float)
    challenger = (rng.random((500, planned)) < 0.15).astype(float)

    found = _ever_significant(champion, challenger, tau=0.05).mean()

    assert found >= 0.8 - 0.04  # the planned power, less the simulation's own noise


def test_a_continuous_improvement_is_found_and_the_winner_is_the_lower_error():
    planned = planned_per_arm(20.0, 20 / math.sqrt(2), effect=5.0, alpha=ALPHA, power=0.8, binary=False)
    rng = np.random.default_rng(5)
    champion = rng.gamma(2.0, 10.0, (300, planned))
    challenger = rng.gamma(2.0, 7.5, (300, planned))  # mean 15: five litres better

    tests = [
        sequential_test(ArmSummary.of(a), ArmSummary.of(b), 5.0, ALPHA)
        for a, b in zip(champion, challenger, strict=True)
    ]

    assert np.mean([t.significant for t in tests]) >= 0.8 - 0.05
    assert all(t.difference < 0 for t in tests if t.significant)


def test_the_confidence_sequence_covers_the_true_difference_at_every_look_at_once():
    rng = np.random.default_rng(21)
    champion = (rng.random((1000, 1500)) < 0.30).astype(float)
    challenger = (rng.random((1000, 1500)) < 0.25).astype(float)

    covered = [
        all(
            (test := sequential_test(a, b, 0.05, ALPHA)) is None or test.low <= -0.05 <= test.high
            for a, b in experiment
        )
        for experiment in _looks(champion, challenger, 1500)
    ]

    assert np.mean(covered) >= 1 - ALPHA - 0.01


@pytest.mark.parametrize(
    ("binary", "draw"), [(True, lambda rng: rng.random(400) < 0.2), (False, lambda rng: rng.gamma(2.0, 10.0, 400))]
)
def test_per_arm_intervals_cover_at_their_level(binary: bool, draw):
    rng = np.random.default_rng(8)
    truth = 0.2 if binary else 20.0
    covered = []
    for _ in range(2000):
        low, high = arm_interval(ArmSummary.of(draw(rng).astype(float)), binary, ALPHA)
        covered.append(low <= truth <= high)

    assert abs(np.mean(covered) - (1 - ALPHA)) < 0.015


def test_nothing_is_tested_before_the_minimum_sample_and_a_smaller_effect_needs_more_data():
    few = ArmSummary.of(np.zeros(DEFAULT_MIN_PER_ARM - 1))
    many = ArmSummary.of(np.ones(DEFAULT_MIN_PER_ARM))

    assert sequential_test(few, many, 0.05, ALPHA) is None
    assert sequential_test(ArmSummary.of(np.zeros(60)), ArmSummary.of(np.ones(60)), 0.05, ALPHA).significant
    sizes = [planned_per_arm(0.2, None, effect, ALPHA, 0.8, True) for effect in (0.1, 0.05, 0.02)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert planned_per_arm(0.5, None, 0.5, ALPHA, 0.8, True) == DEFAULT_MIN_PER_ARM  # huge effect: the minimum
    with pytest.raises(Invalid, match="must be positive"):
        planned_per_arm(0.2, None, 0.0, ALPHA, 0.8, True)
    with pytest.raises(Invalid, match="positive baseline standard deviation"):
        planned_per_arm(20.0, None, 5.0, ALPHA, 0.8, False)
