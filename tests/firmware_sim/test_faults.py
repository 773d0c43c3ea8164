"""Each fault leaves its signature in the v1 features before it fails, then its error code after.

A fixed-seed fleet is split into groups: healthy heaters, and one group per fault mode with a
failure scheduled on day 5 after a 10-day build-up. Features of the day before the failure are
compared group against healthy (medians), then the day after the failure for the error codes.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from firmware_sim.faults import LOWER, UPPER, Faults
from firmware_sim.fleet import FleetSimulator
from shared.features import FEATURE_NAMES, block_stats, features_from_block_stats
from shared.messages import Component

GROUP = 12
GROUPS = ["healthy", *(c.value for c in Component)]
FAIL_HOUR = 5 * 24
VARIANT = {Component.HEATING_ELEMENT: LOWER, Component.SENSOR: UPPER}


@pytest.fixture(scope="module")
def scenario():
    sim = FleetSimulator(GROUP * len(GROUPS), seed=11, start=datetime(2025, 1, 6, tzinfo=UTC), device_prefix="sig")
    sim.faults.postpone_all(np.arange(sim.n))
    for g, name in enumerate(GROUPS[1:], start=1):
        component = Component(name)
        sim.faults.schedule_failure(
            component, np.arange(g * GROUP, (g + 1) * GROUP), FAIL_HOUR, 10 * 24, VARIANT.get(component, LOWER)
        )
    stats, failures = [], []
    for _ in range(FAIL_HOUR // 6 + 8):
        block = sim.next_block()
        stats.append(block_stats(block.window))
        failures += block.failures
    before = features_from_block_stats(np.stack(stats[FAIL_HOUR // 6 - 4 : FAIL_HOUR // 6], axis=1))
    after = features_from_block_stats(np.stack(stats[FAIL_HOUR // 6 + 4 : FAIL_HOUR // 6 + 8], axis=1))
    return before, after, failures


def median(values: np.ndarray, group: str, name: str) -> float:
    g = GROUPS.index(group)
    return float(np.nanmedian(values[g * GROUP : (g + 1) * GROUP, FEATURE_NAMES.index(name)]))


def test_every_scheduled_failure_is_a_ground_truth_event(scenario):
    _, _, failures = scenario
    assert sorted((f.component.value, f.device_id) for f in failures) == sorted(
        (name, f"sig-{i:05d}") for g, name in enumerate(GROUPS[1:], start=1) for i in range(g * GROUP, (g + 1) * GROUP)
    )
    assert {f.failed_at for f in failures} == {datetime(2025, 1, 11, tzinfo=UTC)}
    assert all(12 <= (f.repaired_at - f.failed_at).total_seconds() / 3600 <= 72 for f in failures)


@pytest.mark.parametrize(
    ("group", "feature", "direction", "factor"),
    [
        ("heating_element", "element_power_lower_w", "lower", 0.8),
        ("heating_element", "recovery_rate_lower_c_per_min", "lower", 0.8),
        ("thermostat", "overshoot_max_c", "higher", None),
        ("thermostat", "short_cycles", "higher", 5.0),
        ("thermostat", "setpoint_error_mean_c", "higher", None),
        ("sediment", "energy_per_litre_heated_wh_per_k", "higher", 1.3),
        ("sediment", "recovery_rate_lower_c_per_min", "lower", 0.8),
        ("sediment", "noise_lower_c", "higher", 2.0),
        ("tank_leak", "makeup_flow_no_draw_l", "higher", None),
        ("tank_leak", "leak_sensor_trips", "higher", None),
        ("tank_leak", "standby_loss_c_per_h", "higher", 2.0),
        ("sensor", "noise_upper_c", "higher", 5.0),
        ("sensor", "sensor_out_of_range_minutes", "higher", None),
    ],
)
def test_signature_before_failure(scenario, group, feature, direction, factor):
    before, _, _ = scenario
    faulty, healthy = median(before, group, feature), median(before, "healthy", feature)
    if direction == "higher":
        assert faulty > (healthy * factor if factor else healthy + 1.0), (faulty, healthy)
    else:
        assert faulty < healthy * factor, (faulty, healthy)


@pytest.mark.parametrize("component", list(Component))
def test_error_code_family_after_failure(scenario, component):
    before, after, _ = scenario
    name = f"errors_{component.value}"
    assert median(before, component.value, name) == 0
    assert median(after, component.value, name) > 60
    assert median(after, "healthy", name) == 0


def test_a_realistic_fleet_fails_a_few_dozen_times_per_mode_in_180_days():
    faults = Faults([f"h{i}" for i in range(1000)], datetime(2025, 1, 1, tzinfo=UTC), np.random.default_rng(5))
    for component in Component:
        failures = int((faults.fail_h[component] <= 180 * 24).sum())
        assert 15 <= failures <= 90, (component, failures)
