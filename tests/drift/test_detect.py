"""detect_model_drift on a real SQLite file: feature drift with FDR control, segments, data quality, performance."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import sqlite_utils

from cloud.errors import Invalid
from cloud.monitoring.drift import DriftConfig, detect_model_drift, drift_history, record_check, segment_drift
from cloud.monitoring.drift_stats import compare_with_sketch
from cloud.monitoring.reference import NoReference, build_reference, load_reference, stored_values
from cloud.registry import UnknownModel
from cloud.storage import open_database
from shared.features import FEATURE_NAMES
from tests.drift.fleet import (
    NOW,
    TYPES,
    devices,
    feature_values,
    labelled_rows,
    predict_and_observe,
    register,
    store_features,
)

INLET = "inlet_temperature_c"

CONFIG = DriftConfig()


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    database = open_database(tmp_path / "cloud.db")
    yield database
    database.conn.close()


def _check(db: sqlite_utils.Database, **kwargs) -> dict:
    return detect_model_drift(db, "component_failure", days=2, now=NOW, version="1", **kwargs)


def test_a_shifted_feature_is_detected_and_the_others_are_not(db):
    register(db, feature_values(8_000, seed=1))
    store_features(db, feature_values(2_000, seed=2, shift={"inlet_temperature_c": 0.5, "heating_cycles": 0}))

    result = _check(db)

    assert result["status"] == "drift"
    assert result["feature_drift"]["drifted"] == ["inlet_temperature_c"]
    inlet = result["feature_drift"]["segments"]["all"]["features"]["inlet_temperature_c"]
    assert inlet["method"] == "ks" and inlet["q_value"] <= CONFIG.alpha and inlet["ks_statistic"] > 0.15
    setpoint = result["feature_drift"]["segments"]["all"]["features"]["setpoint_c"]
    assert setpoint["status"] == "ok" and setpoint["ks_statistic"] < 0.05
    assert result["feature_drift"]["segments"]["all"]["features"]["coverage"]["method"] == "psi"
    assert result["feature_drift"]["segments"]["all"]["features"]["heating_cycles"]["method"] == "count"


def test_the_same_distribution_is_not_drift(db):
    register(db, feature_values(8_000, seed=1))
    store_features(db, feature_values(2_000, seed=3))
    result = _check(db)
    assert result["status"] == "ok" and result["feature_drift"]["drifted"] == []
    assert result["data_quality"]["findings"] == []


def test_a_shifted_count_feature_is_judged_by_psi_and_wasserstein(db):
    register(db, feature_values(8_000, seed=1))
    current = feature_values(2_000, seed=4)
    current[:, FEATURE_NAMES.index("draw_count")] += 3  # Poisson(4) → 7 draws a day
    store_features(db, current)
    draw = _check(db)["feature_drift"]["segments"]["all"]["features"]["draw_count"]
    assert draw["status"] == "drift" and draw["method"] == "count" and draw["psi"] > CONFIG.psi_threshold
    assert draw["wasserstein"] == pytest.approx(1.5, abs=0.1)  # 3 draws in SDs of Poisson(4)


def test_segments_by_device_type_find_a_shift_in_one_type_only(db):
    register(db, feature_values(8_000, seed=1))
    current = feature_values(4_000, seed=5)
    big = np.arange(len(current)) % 40 % 2 == 1  # the heaters of TYPES[1]
    current[big, FEATURE_NAMES.index("energy_wh")] += 8.0
    store_features(db, current)

    segments = _check(db)["feature_drift"]["segments"]

    assert set(segments) == {"all", *TYPES}
    assert segments[TYPES[1]]["reference"] == TYPES[1] and segments[TYPES[1]]["reference_rows"] == 4_000
    assert "energy_wh" in segments[TYPES[1]]["drifted"]
    assert "energy_wh" not in segments[TYPES[0]]["drifted"]

    only = _check(db, device_type=TYPES[0])
    assert set(only["feature_drift"]["segments"]) == {TYPES[0]} and only["status"] == "ok"


def test_false_discovery_control_keeps_a_raw_p_below_alpha_from_counting_as_drift(db):
    segment = load_reference(db, "component_failure", register(db, feature_values(8_000, seed=1)))["all"]
    rejected_raw = []
    for seed in range(10, 30):
        result = segment_drift(segment, FEATURE_NAMES, feature_values(400, seed=seed), devices(400)[0], CONFIG, 200)
        for name, entry in result["features"].items():
            if "q_value" in entry:
                assert entry["q_value"] >= entry["p_value"]
                large_psi = entry.get("psi", 0) >= CONFIG.psi_threshold
                large_wasserstein = entry.get("wasserstein", 0) >= CONFIG.wasserstein_threshold
                large = {"ks": True, "psi": large_psi, "count": large_psi or large_wasserstein}[entry["method"]]
                assert (entry["status"] == "drift") == (entry["q_value"] <= CONFIG.alpha and large)
                if entry["p_value"] <= CONFIG.alpha < entry["q_value"]:
                    rejected_raw.append(name)
    assert rejected_raw, "with 32 unshifted features over 20 windows, some raw p-values fall below alpha"


def test_beyond_max_compared_rows_a_continuous_feature_is_compared_on_an_even_subset(db):
    reference = load_reference(db, "component_failure", register(db, feature_values(8_000, seed=1)))["all"]
    current = feature_values(5_000, seed=9, shift={"inlet_temperature_c": 0.5})
    capped = segment_drift(
        reference, FEATURE_NAMES, current, devices(len(current))[0], replace(CONFIG, max_compared_rows=1_000), 200
    )
    inlet = capped["features"]["inlet_temperature_c"]
    assert inlet["compared_rows"] == 1_000 and inlet["rows"] == 5_000 and inlet["method"] == "ks"
    assert capped["drifted"] == ["inlet_temperature_c"]
    cycles = capped["features"]["heating_cycles"]
    assert cycles["method"] == "count" and cycles["compared_rows"] == 1_000  # its Wasserstein distance too


def test_too_few_rows_is_insufficient_data_never_drift(db):
    register(db, feature_values(8_000, seed=1))
    store_features(db, feature_values(150, seed=6, shift={"inlet_temperature_c": 3.0}))
    result = _check(db)
    assert result["status"] == "insufficient_data"
    assert result["feature_drift"]["drifted"] == []
    assert result["feature_drift"]["segments"]["all"]["features"]["inlet_temperature_c"]["status"] == (
        "insufficient_data"
    )


def test_data_quality_findings(db):
    register(db, feature_values(8_000, seed=1))
    current = feature_values(2_000, seed=7)
    current[:600, FEATURE_NAMES.index("standby_loss_c_per_h")] = np.nan
    current[:5, FEATURE_NAMES.index("draw_volume_l")] = -20.0  # litres cannot be negative
    current[:100, FEATURE_NAMES.index("ambient_temperature_c")] = 400.0  # far beyond anything seen in training
    store_features(db, current)
    store_features(db, feature_values(3, seed=8), version="v2")

    findings = _check(db)["data_quality"]["findings"]
    found = {(f["check"], f.get("feature") or f.get("feature_set_version"), f.get("segment")) for f in findings}

    assert ("missing", "standby_loss_c_per_h", "all") in found
    assert ("out_of_range", "draw_volume_l", "all") in found
    assert ("out_of_range", "ambient_temperature_c", "all") in found
    assert ("unknown_schema", "v2", None) in found
    negative = next(f for f in findings if f.get("feature") == "draw_volume_l" and f["segment"] == "all")
    assert negative["impossible"] == 5 and negative["physical_bounds"] == [0.0, None]
    assert not any(f.get("feature") == "setpoint_c" for f in findings)


_FAILURE_BASELINE = {
    "rows": 5_000,
    "per_component": {"heating_element": {"positives": 200, "roc_auc": 0.9}},
}


def _failure_outcomes(db, count: int, informative: bool) -> None:
    rng = np.random.default_rng(11)
    for index in range(count):
        failed = index % 5 == 0
        score = (0.6 + 0.3 * rng.random()) if failed and informative else 0.6 * rng.random()
        if not informative:
            score = rng.random()
        outcome = {"component": "heating_element", "result": "failed"} if failed else {"result": "ok"}
        predict_and_observe(db, index, {"no_failure": 1 - score, "heating_element": score}, outcome)


def test_performance_degradation_is_detected_with_enough_outcomes(db):
    register(db, feature_values(2_000, seed=1), holdout=_FAILURE_BASELINE)
    _failure_outcomes(db, 300, informative=False)
    performance = _check(db)["performance"]
    element = performance["components"]["heating_element"]
    assert performance["status"] == "degraded" and element["status"] == "degraded"
    assert element["positives"] == 60 and element["negatives"] == 240 and element["roc_auc"] < 0.65
    assert element["q_value"] <= CONFIG.alpha
    assert performance["components"]["thermostat"]["status"] == "insufficient_data"


def test_a_model_as_good_as_its_baseline_is_not_degraded(db):
    register(db, feature_values(2_000, seed=1), holdout=_FAILURE_BASELINE)
    _failure_outcomes(db, 300, informative=True)
    assert _check(db)["performance"]["status"] == "ok"


def test_few_outcomes_are_insufficient_data(db):
    register(db, feature_values(2_000, seed=1), holdout=_FAILURE_BASELINE)
    _failure_outcomes(db, 40, informative=False)
    result = _check(db)
    assert result["performance"]["status"] == "insufficient_data"
    assert result["status"] != "drift"


def test_usage_errors_against_the_baseline_mae(db):
    baseline = {"rows": 4_000, "mae_litres": 20.0, "rmse_litres": 25.0}
    register(db, feature_values(2_000, seed=1), model_name="usage_pattern", holdout=baseline)
    rng = np.random.default_rng(12)
    for index in range(150):
        predicted = 150.0
        measured = predicted + rng.normal(0, 40.0)  # |error| averages ~32 litres against a 20-litre baseline
        predict_and_observe(
            db, index, {"litres_next_24h": predicted}, {"source": "sensor", "value": measured}, "usage_pattern"
        )
    performance = detect_model_drift(db, "usage_pattern", days=2, now=NOW)["performance"]
    assert performance["status"] == "degraded" and performance["mae_litres"] > 25 and performance["p_value"] < 0.01

    lenient = replace(CONFIG, min_outcomes=500)
    again = detect_model_drift(db, "usage_pattern", days=2, now=NOW, config=lenient)["performance"]
    assert again["status"] == "insufficient_data"


def test_checks_are_recorded_and_read_back_newest_first(db):
    register(db, feature_values(8_000, seed=1))
    store_features(db, feature_values(2_000, seed=2, shift={"inlet_temperature_c": 0.5}))
    first = record_check(db, _check(db), actor="test")
    second = record_check(db, _check(db, device_type=TYPES[1]), actor="test")
    history = drift_history(db, "component_failure")
    assert [entry["id"] for entry in history] == [second, first]
    assert history[1]["status"] == "drift" and history[1]["drifted"] == ["inlet_temperature_c"]
    assert history[0]["device_type"] == TYPES[1]


def test_unknown_models_versions_and_bad_windows_are_refused(db):
    with pytest.raises(UnknownModel):
        detect_model_drift(db, "toaster")
    register(db, feature_values(500, seed=1))
    db.execute("DELETE FROM model_references")
    with pytest.raises(NoReference, match="retrain"):
        detect_model_drift(db, "component_failure")
    with pytest.raises(Invalid, match="days"):
        detect_model_drift(db, "component_failure", version="1", days=0)
    with pytest.raises(Invalid, match="min_rows"):
        DriftConfig(min_rows=0)


def _heater_fleet(heaters: int, windows: int, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``heaters`` heaters × ``windows`` windows in which each heater's inlet temperature keeps its own
    level (its site's mains water, sd 3 K across the fleet) with 0.3 K between windows; the other features as
    ``feature_values``."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.array([f"wh-{seed}-{h:04d}" for h in range(heaters)]), windows)
    values = feature_values(heaters * windows, seed=seed)
    level = rng.normal(12.0 + shift, 3.0, heaters)
    values[:, FEATURE_NAMES.index(INLET)] = np.repeat(level, windows) + rng.normal(0.0, 0.3, heaters * windows)
    return values.astype(np.float32), ids


def test_other_samples_of_heaters_from_the_same_fleet_are_not_drift_a_shifted_fleet_is():
    # as the demo's first check: 240 rows of 30 heaters against 400 training heaters. Counting 240 independent
    # rows, the KS test calls most differences between two samples of heaters drift
    values, ids = _heater_fleet(400, 20, seed=1)
    reference = build_reference(labelled_rows(values, ids), None)["all"]
    inlet = reference["features"][INLET]
    assert 300 < inlet["effective_rows"] < 550  # 8,000 rows, about one draw per heater

    as_rows, as_heaters = 0, 0
    for seed in range(2, 42):
        current, current_ids = _heater_fleet(30, 8, seed=seed)
        column = current[:, FEATURE_NAMES.index(INLET)].astype(np.float64)
        as_rows += compare_with_sketch(column, stored_values(inlet["sketch"]), inlet["count"]).p_value <= CONFIG.alpha
        checked = segment_drift(reference, FEATURE_NAMES, current, current_ids, CONFIG, 200)["features"][INLET]
        assert checked["effective_rows"] < 45
        as_heaters += checked["status"] == "drift"
    assert as_rows >= 20 and as_heaters <= 4, (as_rows, as_heaters)  # of 40 samples

    shifted, shifted_ids = _heater_fleet(30, 8, seed=2, shift=-6.0)  # mains water 6 K colder everywhere
    assert segment_drift(reference, FEATURE_NAMES, shifted, shifted_ids, CONFIG, 200)["drifted"] == [INLET]
