"""The tank model against the reference parameters: heating rates, standby loss, draws, lockout, ECO."""

from __future__ import annotations

import numpy as np
import pytest

from firmware_sim.parameters import (
    BOTTOM_LOSS_W,
    ECO_LIMIT_C,
    LOWER_RATE_K_PER_MIN,
    LOWER_ZONE_SHARE,
    REFERENCE_TANK_L,
    REFERENCE_UA_W_PER_K,
    UPPER_RATE_K_PER_MIN,
    UPPER_ZONE_SHARE,
    WATER_J_PER_KG_K,
)
from firmware_sim.physics import BlockControls, TankPhysics


def controls(hours: int = 1, n: int = 1, **changes) -> BlockControls:
    hourly = (n, hours)
    values = dict(
        draw_l=np.zeros((n, hours * 60)),
        leak_l=np.zeros(hourly),
        inlet_c=np.full(hourly, 10.0),
        ambient_c=np.full(hourly, 20.0),
        upper_w=np.full(hourly, 5148.0),
        lower_w=np.full(hourly, 5148.0),
        lower_efficiency=np.ones(hourly),
        start_below_k=np.full(hourly, 2.28),
        stop_above_k=np.zeros(hourly),
        jitter_k=None,
        stuck_on=np.zeros(hourly, bool),
        heating_enabled=np.ones(hourly, bool),
        eco_reset=np.zeros(hourly, bool),
    )
    values.update(changes)
    return BlockControls(**values)


def tank(setpoint: float, temperature: float) -> TankPhysics:
    physics = TankPhysics(np.array([REFERENCE_TANK_L]), np.array([setpoint]), np.array([temperature]))
    physics.lower_c[:] = temperature
    return physics


def stored_j(physics_or_upper, lower=None) -> float:
    upper_kg, lower_kg = REFERENCE_TANK_L * UPPER_ZONE_SHARE, REFERENCE_TANK_L * LOWER_ZONE_SHARE
    return WATER_J_PER_KG_K * (upper_kg * physics_or_upper + lower_kg * lower)


def test_elements_heat_at_the_reference_rates():
    # ambient at tank temperature: no loss to speak of, so the rise is the element's
    physics = tank(setpoint=65.0, temperature=30.0)
    record = physics.run_block(controls(hours=2, ambient_c=np.full((1, 2), 30.0)))
    upper_rise = np.diff(record.upper_c[0])[record.upper_on[0, 1:] == 1.0]
    lower_rise = np.diff(record.lower_c[0])[record.lower_on[0, 1:] == 1.0]
    assert upper_rise.size > 20 and lower_rise.size > 20
    assert np.median(upper_rise) == pytest.approx(UPPER_RATE_K_PER_MIN, rel=0.02)  # 2.01 °F/min
    assert np.median(lower_rise) == pytest.approx(LOWER_RATE_K_PER_MIN, rel=0.02)  # 1.38 °F/min
    # the upper element goes first, and the two never run together
    assert record.upper_on[0, 0] == 1.0 and record.lower_on[0, 0] == 0.0
    assert not ((record.upper_on > 0) & (record.lower_on > 0)).any()
    # it stops part-way through the minute it reaches the setpoint, not above it
    assert record.upper_c.max() <= 65.0 + 1e-6


def test_standby_loss_matches_ua_and_bottom_loss():
    physics = tank(setpoint=60.0, temperature=60.0)
    before = stored_j(60.0, 60.0)
    record = physics.run_block(controls(hours=1, heating_enabled=np.zeros((1, 1), bool)))
    after = stored_j(record.upper_c[0, -1], record.lower_c[0, -1])
    loss_w = (before - after) / 3600.0
    mean_tank = (record.upper_c[0].mean() + record.lower_c[0].mean()) / 2
    expected_w = REFERENCE_UA_W_PER_K * (mean_tank - 20.0) + BOTTOM_LOSS_W
    assert loss_w == pytest.approx(expected_w, rel=0.02)
    assert 90 < loss_w < 130  # 4.48 BTU/h·°F over 72 °F plus 91 BTU/h, about 106 W


def test_a_draw_carries_away_its_heat_and_cools_the_tank():
    physics = tank(setpoint=50.0, temperature=50.0)
    draw = np.zeros((1, 60))
    draw[0, 10:16] = 8.0  # a 48 L shower
    record = physics.run_block(
        controls(draw_l=draw, heating_enabled=np.zeros((1, 1), bool), ambient_c=np.full((1, 1), 50.0))
    )
    assert record.upper_c[0, 16] < record.upper_c[0, 9] and record.lower_c[0, 16] < record.lower_c[0, 9] - 5
    lost_j = stored_j(50.0, 50.0) - stored_j(record.upper_c[0, -1], record.lower_c[0, -1])
    carried_j = WATER_J_PER_KG_K * (draw[0] * (np.r_[50.0, record.upper_c[0, :-1]] - 10.0)).sum()
    assert lost_j == pytest.approx(carried_j, rel=0.05)


def test_lockout_keeps_elements_off_for_330_seconds():
    physics = tank(setpoint=50.0, temperature=49.0)
    draw = np.where(np.random.default_rng(3).random((1, 360)) < 0.08, 8.0, 0.0)  # draws keep calling for heat
    record = physics.run_block(controls(hours=6, draw_l=draw))
    on = (record.upper_on[0] > 0) | (record.lower_on[0] > 0)
    stops = np.flatnonzero(on[:-1] & ~on[1:])
    assert stops.size >= 5
    for stop in stops:
        assert not on[stop + 1 : stop + 6].any(), "restarted within the lockout"


def test_stuck_thermostat_heats_to_the_eco_limit_which_latches_until_reset():
    physics = tank(setpoint=50.0, temperature=50.0)
    record = physics.run_block(controls(hours=2, stuck_on=np.ones((1, 2), bool)))
    tripped = np.flatnonzero(record.eco[0])
    assert tripped.size and record.eco[0, tripped[0] :].all()
    assert ECO_LIMIT_C <= record.upper_c[0].max() < ECO_LIMIT_C + UPPER_RATE_K_PER_MIN
    assert (record.upper_on[0, tripped[0] + 1 :] == 0).all() and (record.lower_on[0, tripped[0] + 1 :] == 0).all()
    reset = physics.run_block(controls(hours=1, eco_reset=np.ones((1, 1), bool)))
    assert not reset.eco.any()


def test_open_upper_element_leaves_the_lower_one_to_do_the_work():
    physics = tank(setpoint=60.0, temperature=40.0)
    record = physics.run_block(controls(hours=3, upper_w=np.zeros((1, 3))))
    assert (record.upper_on == 0).all() and record.lower_on.sum() > 30
    assert record.upper_c[0, -1] > 50.0, "the lower zone's heat rises into the upper zone"
