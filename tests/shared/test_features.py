"""Feature set v1 on hand-made windows whose right answers are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.features import (
    BLOCK_SAMPLES,
    BLOCKS_PER_WINDOW,
    FEATURE_NAMES,
    FEATURE_SET_VERSION,
    FEATURES,
    MIN_COVERAGE,
    WINDOW_SAMPLES,
    TelemetryWindow,
    block_stats,
    compute_features,
    features_from_block_stats,
)


def quiet_window(n: int) -> TelemetryWindow:
    """Heaters at rest: tank at setpoint, no heating, no draws, no errors."""
    window = TelemetryWindow.empty(n)
    shape = window.shape
    window.dhw_temperature[:] = 49.5
    window.dhw_temperature_setting[:] = 50.0
    window.tank_upper_temperature[:] = 50.0
    window.tank_lower_temperature[:] = 45.0
    window.current_inlet_temperature[:] = 10.0
    window.ambient_temperature[:] = 20.0
    for name in ("current_dhw_flow_rate", "current_inst_power", "heat_upper_use", "heat_lower_use"):
        getattr(window, name)[:] = np.zeros(shape, np.float32)
    window.wtr_ovr_sensor_use[:] = 0.0
    window.error_code[:] = 0.0
    return window


def feature(values: np.ndarray, name: str, heater: int = 0) -> float:
    return float(values[heater, FEATURE_NAMES.index(name)])


def test_names_are_documented_unique_and_versioned():
    assert FEATURE_SET_VERSION == "v1"
    assert len(FEATURE_NAMES) == len(set(FEATURE_NAMES)) == len(FEATURES)
    assert all(f.unit and len(f.meaning) > 20 for f in FEATURES)


def test_shape_dtype_and_window_length_are_enforced():
    values = compute_features(quiet_window(3))
    assert values.shape == (3, len(FEATURE_NAMES)) and values.dtype == np.float32
    with pytest.raises(ValueError, match="1440"):
        compute_features(TelemetryWindow.empty(1, WINDOW_SAMPLES - 1))
    with pytest.raises(ValueError, match="shape"):
        TelemetryWindow(**{**vars(quiet_window(1)), "error_code": np.zeros((1, 10), np.float32)})


def test_known_events_give_known_features():
    w = quiet_window(1)
    # one upper-element run of 10 minutes heating 1 °C per minute at 5,000 W
    w.heat_upper_use[0, 100:110] = 1.0
    w.current_inst_power[0, 100:110] = 5000.0
    w.tank_upper_temperature[0, 100:110] = 50.0 + np.arange(1, 11)
    w.tank_upper_temperature[0, 110:360] = 60.0
    # two draws: 5 min at 8 L/min, 2 min at 4 L/min
    w.current_dhw_flow_rate[0, 400:405] = 8.0
    w.current_dhw_flow_rate[0, 800:802] = 4.0
    # three one-minute starts 7 minutes apart: the last two are short cycles
    w.heat_lower_use[0, [600, 607, 614]] = 1.0
    # two wet spells of the leak sensor, and 40 minutes of an open element
    w.wtr_ovr_sensor_use[0, 1200:1204] = 1.0
    w.wtr_ovr_sensor_use[0, 1300] = 1.0
    w.error_code[0, 1400:1440] = 96.0
    values = compute_features(w)

    assert feature(values, "coverage") == 1.0
    assert feature(values, "recovery_rate_upper_c_per_min") == pytest.approx(1.0)
    assert feature(values, "element_power_upper_w") == pytest.approx(5000.0)
    assert feature(values, "duty_cycle_upper") == pytest.approx(10 / 1440)
    assert feature(values, "overshoot_max_c") == pytest.approx(10.0)
    assert feature(values, "draw_volume_l") == pytest.approx(48.0)
    assert feature(values, "draw_count") == 2
    assert feature(values, "draw_volume_last_6h_l") == 0.0
    assert feature(values, "heating_cycles") == 4
    assert feature(values, "short_cycles") == 2
    assert feature(values, "leak_sensor_trips") == 2
    assert feature(values, "errors_heating_element") == 40
    assert feature(values, "errors_sensor") == 0
    assert feature(values, "makeup_flow_no_draw_l") == 0.0
    assert feature(values, "energy_wh") == pytest.approx(10 * 5000 / 60)


def test_trickle_noise_and_out_of_range_readings():
    rng = np.random.default_rng(1)
    w = quiet_window(2)
    w.current_dhw_flow_rate[1, 10:350] = 0.2  # make-up flow with no tap open: 68 L
    w.tank_lower_temperature[1] += rng.normal(0.0, 0.5, WINDOW_SAMPLES).astype(np.float32)
    w.tank_upper_temperature[1, 700:730] = -30.0  # a sensor on its rail for half an hour
    values = compute_features(w)
    assert feature(values, "makeup_flow_no_draw_l", 1) == pytest.approx(68.0, rel=0.02)
    assert feature(values, "noise_lower_c", 1) == pytest.approx(0.5, rel=0.1)
    assert feature(values, "noise_lower_c", 0) == 0.0
    assert feature(values, "sensor_out_of_range_minutes", 1) == 30
    assert feature(values, "overshoot_max_c", 1) == 0.0, "rail readings are not overshoot"


def test_gaps_scale_totals_and_too_little_data_gives_nan():
    w = quiet_window(2)
    w.current_dhw_flow_rate[:, 900:910] = 6.0  # 60 L in the part both heaters report
    for name in vars(w):
        getattr(w, name)[0, :BLOCK_SAMPLES] = np.nan  # heater 0 misses 6 hours
        getattr(w, name)[1, : int(WINDOW_SAMPLES * (1 - MIN_COVERAGE)) + 60] = np.nan  # heater 1 misses 13 hours
    values = compute_features(w)
    assert feature(values, "coverage", 0) == 0.75
    assert feature(values, "draw_volume_l", 0) == pytest.approx(80.0), "60 L seen in 18 h is 80 L per 24 h"
    assert feature(values, "setpoint_c", 0) == pytest.approx(50.0)
    assert feature(values, "coverage", 1) < MIN_COVERAGE
    assert np.isnan(values[1, 1:]).all()


def test_window_is_the_sum_of_its_blocks():
    rng = np.random.default_rng(2)
    w = quiet_window(4)
    w.current_dhw_flow_rate[:] = np.where(rng.random(w.shape) < 0.02, 7.0, 0.0).astype(np.float32)
    stats = np.stack(
        [block_stats(w.columns(b * BLOCK_SAMPLES, (b + 1) * BLOCK_SAMPLES)) for b in range(BLOCKS_PER_WINDOW)], axis=1
    )
    np.testing.assert_array_equal(features_from_block_stats(stats), compute_features(w))
    with pytest.raises(ValueError, match="block statistics"):
        features_from_block_stats(stats[:, :2])


def test_every_feature_is_documented_with_its_unit():
    doc = (Path(__file__).parents[2] / "docs" / "telemetry.md").read_text()
    for f in FEATURES:
        assert f"| `{f.name}` | {f.unit} |" in doc, f.name
