"""The drift statistics agree with scipy and the textbook on fixed fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cloud.monitoring import drift_stats
from cloud.monitoring.reference import SKETCH_SIZE, sketch_error


def _sketch(reference: np.ndarray) -> np.ndarray:
    """The reference sketch exactly as ``build_reference`` stores it."""
    return np.quantile(reference, (np.arange(SKETCH_SIZE) + 0.5) / SKETCH_SIZE, method="inverted_cdf")


@pytest.mark.parametrize(("shift", "current_rows"), [(0.0, 1500), (0.08, 1500), (0.3, 800), (0.05, 1900)])
def test_ks_against_the_sketch_agrees_with_ks_2samp_within_the_sketch_error(shift, current_rows):
    rng = np.random.default_rng(7)
    reference = rng.gamma(2.0, 3.0, 20_000)
    current = rng.gamma(2.0, 3.0, current_rows) + shift * 3.0
    bound = sketch_error(SKETCH_SIZE, reference.size)

    compared = drift_stats.compare_with_sketch(current, _sketch(reference), reference.size)
    exact = stats.ks_2samp(current, reference, method="asymp")

    assert abs(compared.ks_statistic - exact.statistic) <= bound + 1e-12
    # the p-value is scipy's own distribution at the sketch's statistic: ks_2samp's lies within the error band
    effective = round(current.size * reference.size / (current.size + reference.size))
    assert stats.kstwo.sf(compared.ks_statistic + bound, effective) <= exact.pvalue + 1e-12
    assert exact.pvalue <= stats.kstwo.sf(compared.ks_statistic - bound, effective) + 1e-12
    assert compared.p_value == pytest.approx(stats.kstwo.sf(compared.ks_statistic, effective))


def test_large_samples_use_kolmogorovs_limit_close_to_ks_2samp():
    rng = np.random.default_rng(8)
    reference, current = rng.normal(size=50_000), rng.normal(0.03, 1.0, 40_000)
    compared = drift_stats.compare_with_sketch(current, _sketch(reference), reference.size)
    exact = stats.ks_2samp(current, reference, method="asymp")
    assert abs(compared.ks_statistic - exact.statistic) <= sketch_error(SKETCH_SIZE, reference.size)
    effective = current.size * reference.size / (current.size + reference.size)
    assert compared.p_value == pytest.approx(stats.kstwobign.sf(compared.ks_statistic * math.sqrt(effective)))
    assert compared.p_value < 0.05 and exact.pvalue < 0.05


def test_wasserstein_is_scipys_distance_to_the_sketch_and_close_to_the_full_reference():
    rng = np.random.default_rng(9)
    reference, current = rng.normal(size=20_000), rng.normal(0.5, 1.0, 3_000)
    sketch = _sketch(reference)
    compared = drift_stats.compare_with_sketch(current, sketch, reference.size)
    assert compared.wasserstein == pytest.approx(stats.wasserstein_distance(current, sketch), rel=1e-9)
    assert compared.wasserstein == pytest.approx(stats.wasserstein_distance(current, reference), abs=0.02)


def test_psi_is_the_textbook_sum_on_fixed_counts():
    reference = np.array([100, 200, 300, 250, 150])
    current = np.array([80, 150, 320, 300, 150])
    e, a = reference / reference.sum(), current / current.sum()
    textbook = sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e, strict=True))
    assert drift_stats.population_stability_index(reference, current) == pytest.approx(textbook, rel=1e-12)
    assert drift_stats.population_stability_index(reference, reference * 3) == pytest.approx(0.0, abs=1e-15)


def test_psi_of_an_empty_bin_uses_the_documented_floor():
    reference, current = np.array([50, 50, 0]), np.array([40, 40, 20])
    e = np.maximum(reference / 100, drift_stats.PSI_FLOOR)
    a = current / 100
    expected = float(np.sum((a - e) * np.log(a / e)))
    assert drift_stats.population_stability_index(reference, current) == pytest.approx(expected)
    assert expected > 0.2  # a new category holding a fifth of the rows is a significant shift


def test_homogeneity_p_value_is_scipys_chi_square_on_the_two_rows():
    reference, current = np.array([120, 80, 0, 50]), np.array([30, 40, 0, 10])
    expected = stats.chi2_contingency(np.array([[120, 80, 50], [30, 40, 10]])).pvalue
    assert drift_stats.homogeneity_p_value(reference, current) == pytest.approx(expected)
    assert drift_stats.homogeneity_p_value(np.array([10, 0]), np.array([5, 0])) == 1.0


def test_benjamini_hochberg_adjusts_as_the_procedure_says():
    p = [0.01, 0.04, 0.03, 0.2]
    # sorted 0.01, 0.03, 0.04, 0.2 → p·m/rank = 0.04, 0.06, 0.0533, 0.2 → running minimum from the top
    assert drift_stats.benjamini_hochberg(p) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.2])


def test_auc_drop_is_significant_only_with_enough_cases():
    baseline = (0.90, 200, 5_000)
    assert drift_stats.auc_drop_p_value(baseline, (0.70, 60, 600)) < 0.001
    assert drift_stats.auc_drop_p_value(baseline, (0.85, 5, 30)) > 0.05
    assert drift_stats.auc_drop_p_value(baseline, (0.95, 60, 600)) > 0.5
    # Hanley & McNeil's worked value: AUC 0.5 with equal classes has variance (n_p + n_n + 1) / (12 n_p n_n)
    assert drift_stats.auc_standard_error(0.5, 40, 40) == pytest.approx(math.sqrt(81 / (12 * 1600)))


@pytest.mark.parametrize("within_sd", [0.0, 0.5, 3.0])
def test_effective_rows_is_kishs_design_effect_with_the_anova_icc(within_sd):
    # 30 heaters × 8 windows; ICC(1) from scipy's one-way ANOVA F: (F − 1) / (F + k − 1), k rows per heater
    rng = np.random.default_rng(5)
    heaters = np.repeat(np.arange(30), 8)
    values = rng.normal(50.0, 1.0, 30)[heaters] + rng.normal(0.0, within_sd, heaters.size)

    found = drift_stats.effective_rows(values, heaters)

    if within_sd == 0.0:  # a heater's setpoint: each heater is one draw
        assert found == pytest.approx(30)
        return
    f = stats.f_oneway(*[values[heaters == h] for h in range(30)]).statistic
    icc = max((f - 1) / (f + 8 - 1), 0.0)
    assert found == pytest.approx(values.size / (1 + 7 * icc))
    assert 30 < found <= values.size


def test_effective_rows_of_one_heater_or_unrelated_rows_is_every_row():
    rng = np.random.default_rng(6)
    values = rng.normal(size=400)
    assert drift_stats.effective_rows(values, np.zeros(400, np.int64)) == 400
    assert drift_stats.effective_rows(values, np.arange(400)) == 400
    assert drift_stats.effective_rows(np.full(400, 3.0), np.arange(400) % 20) == 400  # no spread: nothing to say


def test_effective_rows_shrink_the_ks_and_chi_square_evidence():
    rng = np.random.default_rng(8)
    reference, current = rng.normal(size=20_000), rng.normal(0.15, 1.0, 240)
    as_rows = drift_stats.compare_with_sketch(current, _sketch(reference), reference.size)
    as_heaters = drift_stats.compare_with_sketch(current, _sketch(reference), 400, current_rows=30)
    assert as_heaters.ks_statistic == as_rows.ks_statistic
    assert as_heaters.p_value == pytest.approx(stats.kstwo.sf(as_rows.ks_statistic, round(30 * 400 / 430)))
    counts, shifted = np.array([500, 500]), np.array([60, 40])
    scaled = drift_stats.homogeneity_p_value(counts, shifted, (0.5, 0.25))
    assert scaled == pytest.approx(stats.chi2_contingency(np.array([[250, 250], [15, 10]])).pvalue)
    assert scaled > drift_stats.homogeneity_p_value(counts, shifted)
