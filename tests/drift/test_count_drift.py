"""Count features (events per day) both ways: a 10 % rise in mean draws per day is drift, sampling noise is not.

PSI on the reference's deciles grows with the square of a shift, so the conventional 0.2 missed the rise (PSI
0.04) while its chi-square test was certain; the Wasserstein distance in reference SDs (0.2 for Poisson 4 → 4.4)
is the effect size that sees it, and the test keeps noise out where small windows make that distance noisy.
Evidence and figures: ``docs/drift.md`` and ``python -m bench drift_statistics``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from cloud.monitoring.drift import DriftConfig, detect_model_drift, segment_drift
from cloud.monitoring.reference import build_reference, load_reference
from shared.features import FEATURE_NAMES
from tests.drift.fleet import NOW, feature_values, labelled_rows, register, store_features
from tests.drift.test_detect import db  # noqa: F401 (fixture)

CONFIG = DriftConfig()
DRAWS = "draw_count"


def _draws(rows: int, mean: float, seed: int) -> np.ndarray:
    """One column of Poisson draws per day, as the feature store holds it (float32)."""
    return np.random.default_rng(seed).poisson(mean, (rows, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def reference() -> dict:
    """The all-rows reference of 100,000 independent days (one heater each) of Poisson(4) draws."""
    values = _draws(100_000, 4.0, seed=1)
    rows = replace(labelled_rows(values, np.arange(len(values)).astype(str)), feature_names=[DRAWS])
    return build_reference(rows, None)["all"]


def _check(reference: dict, values: np.ndarray) -> dict:
    return segment_drift(reference, [DRAWS], values, np.arange(len(values)), CONFIG, 200)["features"][DRAWS]


@pytest.mark.parametrize("rows", [10_000, 100_000])
def test_a_ten_percent_rise_in_draws_is_drift_though_its_psi_is_small(reference, rows):
    checked = _check(reference, _draws(rows, 4.4, seed=2))
    assert checked["status"] == "drift" and checked["method"] == "count"
    assert checked["psi"] < CONFIG.psi_threshold  # what PSI alone missed
    assert checked["wasserstein"] == pytest.approx(0.2, abs=0.03) and checked["q_value"] < 1e-6


@pytest.mark.parametrize("rows", [1_000, 10_000, 100_000])
def test_sampling_noise_is_not_drift_and_its_distance_stays_below_the_threshold(reference, rows):
    for seed in range(10, 20):
        checked = _check(reference, _draws(rows, 4.0, seed=seed))
        assert checked["status"] == "ok", (rows, seed, checked)
        assert checked["wasserstein"] < CONFIG.wasserstein_threshold


def test_in_small_windows_the_test_not_the_distance_keeps_noise_out(reference):
    # 200 rows: the distance of pure noise often reaches the threshold, the chi-square test rarely agrees
    checked = [_check(reference, _draws(200, 4.0, seed=seed)) for seed in range(100, 140)]
    far = sum(entry["wasserstein"] >= CONFIG.wasserstein_threshold for entry in checked)
    flagged = sum(entry["status"] == "drift" for entry in checked)
    assert far >= 10 and flagged <= 4, (far, flagged)  # of 40 windows; alpha is 0.05


def test_a_rise_in_draws_is_found_on_a_real_database_and_nothing_else_is(db):  # noqa: F811
    register(db, feature_values(20_000, seed=1))
    current = feature_values(20_000, seed=2)
    column = FEATURE_NAMES.index(DRAWS)
    current[:, column] = np.random.default_rng(3).poisson(4.4, len(current))
    store_features(db, current)

    result = detect_model_drift(db, "component_failure", days=2, now=NOW, version="1")

    assert result["feature_drift"]["drifted"] == [DRAWS]
    draws = result["feature_drift"]["segments"]["all"]["features"][DRAWS]
    assert draws["psi"] < CONFIG.psi_threshold and draws["wasserstein"] >= CONFIG.wasserstein_threshold


def test_a_reference_stored_before_counts_had_sketches_is_judged_by_psi(db):  # noqa: F811
    summary = load_reference(db, "component_failure", register(db, feature_values(8_000, seed=1)))["all"]
    for name in ("heating_cycles", DRAWS):
        del summary["features"][name]["sketch"], summary["features"][name]["spread"]
    current = feature_values(2_000, seed=4)
    current[:, FEATURE_NAMES.index(DRAWS)] += 3  # Poisson(4) → 7 draws a day
    features = segment_drift(summary, FEATURE_NAMES, current, np.arange(len(current)) % 40, CONFIG, 200)["features"]
    assert features[DRAWS]["method"] == "psi" and "wasserstein" not in features[DRAWS]
    assert features[DRAWS]["status"] == "drift" and features["heating_cycles"]["status"] == "ok"
