"""What the heater reports: the true state through its sensors (noise, resolution, faults) and flags.

Tank sensors add a little uniform noise and report tenths of °C, as NaviLink does; a failing
sensor adds growing noise, sticks at a value for a while, spikes to a rail and finally stays
there. Sediment kettling makes the lower reading jumpy while the lower element runs. The flow
meter reports draws plus any make-up inflow from a leak. The error code shows the unit's faults,
with the ECO trip (E901) from the minute it happens.
"""

from __future__ import annotations

import numpy as np

from firmware_sim.faults import SENSOR_RAILS_C, FaultEffects
from firmware_sim.parameters import (
    FLOW_RESOLUTION_L_PER_MIN,
    OUTLET_DROP_K,
    SENSOR_NOISE_C,
    TEMPERATURE_RESOLUTION_C,
)
from firmware_sim.physics import BlockControls, BlockRecord
from shared.features import TelemetryWindow
from shared.telemetry import ErrorCode

#: a wet leak sensor stays wet this long after water reaches it
WET_SPELL_MINUTES = 8
STUCK_MINUTES = (10, 120)


def _quantise(values: np.ndarray, step: float) -> np.ndarray:
    return (np.round(values / step) * step).astype(np.float32)


def _per_minute(hourly: np.ndarray) -> np.ndarray:
    return np.repeat(hourly, 60, axis=1)


def read_sensors(
    rec: BlockRecord,
    controls: BlockControls,
    fx: FaultEffects,
    setpoint_c: np.ndarray,
    rng: np.random.Generator,
) -> TelemetryWindow:
    n, minutes = rec.upper_c.shape
    half_width = np.float32(SENSOR_NOISE_C * np.sqrt(3.0))  # uniform noise with this standard deviation
    tanks = []
    for zone, true in enumerate((rec.upper_c, rec.lower_c)):
        reading = true + (rng.random((n, minutes), dtype=np.float32) * 2 - 1) * half_width
        if zone == 1:
            _add_noise(reading, _per_minute(fx.kettling_sd_k) * (rec.lower_on > 0), rng)
        _sensor_faults(reading, fx, zone, rng)
        tanks.append(_quantise(reading, TEMPERATURE_RESOLUTION_C))

    inlet = _per_minute(np.round(controls.inlet_c, 1)).astype(np.float32)
    ambient = _per_minute(np.round(controls.ambient_c, 1)).astype(np.float32)
    flow = _quantise(controls.draw_l + _per_minute(controls.leak_l), FLOW_RESOLUTION_L_PER_MIN)
    power = np.round(rec.upper_on * _per_minute(controls.upper_w) + rec.lower_on * _per_minute(controls.lower_w))

    code = _per_minute(fx.error_code)
    code[rec.eco & (code != ErrorCode.LEAK)] = ErrorCode.ECO_HIGH_LIMIT
    return TelemetryWindow(
        dhw_temperature=_quantise(rec.upper_c - OUTLET_DROP_K, TEMPERATURE_RESOLUTION_C),
        dhw_temperature_setting=np.repeat(setpoint_c.astype(np.float32)[:, None], minutes, axis=1),
        tank_upper_temperature=tanks[0],
        tank_lower_temperature=tanks[1],
        current_inlet_temperature=inlet,
        ambient_temperature=ambient,
        current_dhw_flow_rate=flow,
        current_inst_power=power.astype(np.float32),
        heat_upper_use=(rec.upper_on > 0).astype(np.float32),
        heat_lower_use=(rec.lower_on > 0).astype(np.float32),
        wtr_ovr_sensor_use=_leak_sensor(fx, minutes, rng),
        error_code=code.astype(np.float32),
    )


def _add_noise(reading: np.ndarray, sd: np.ndarray, rng: np.random.Generator) -> None:
    rows = np.flatnonzero(sd.any(axis=1))
    if rows.size:
        reading[rows] += sd[rows] * rng.standard_normal((rows.size, reading.shape[1]), dtype=np.float32)


def _sensor_faults(reading: np.ndarray, fx: FaultEffects, zone: int, rng: np.random.Generator) -> None:
    n, minutes = reading.shape
    _add_noise(reading, _per_minute(fx.sensor_noise_sd_k[:, :, zone]), rng)

    stuck_rows = np.flatnonzero(fx.sensor_stuck_per_h[:, :, zone].any(axis=1))
    for row in stuck_rows:
        hours = np.flatnonzero(rng.random(fx.sensor_stuck_per_h.shape[1]) < fx.sensor_stuck_per_h[row, :, zone])
        for hour in hours:
            first = hour * 60 + int(rng.integers(0, 60))
            last = min(minutes, first + int(rng.integers(*STUCK_MINUTES)))
            reading[row, first:last] = reading[row, first]

    spike_rows = np.flatnonzero(fx.sensor_spike_per_min[:, :, zone].any(axis=1))
    if spike_rows.size:
        chance = _per_minute(fx.sensor_spike_per_min[spike_rows, :, zone])
        spikes = rng.random(chance.shape) < chance
        rails = np.asarray(SENSOR_RAILS_C, np.float32)[rng.integers(0, 2, chance.shape)]
        reading[spike_rows] = np.where(spikes, rails, reading[spike_rows])

    rail = _per_minute(fx.sensor_rail_c[:, :, zone])
    failed = np.isfinite(rail)
    reading[failed] = rail[failed]


def _leak_sensor(fx: FaultEffects, minutes: int, rng: np.random.Generator) -> np.ndarray:
    wet = _per_minute(fx.leak_sensor_wet).astype(np.float32)
    rows = np.flatnonzero(fx.wet_per_min.any(axis=1))
    if rows.size:
        trips = rng.random((rows.size, minutes)) < _per_minute(fx.wet_per_min[rows])
        prefix = np.zeros((rows.size, minutes + WET_SPELL_MINUTES), np.int32)
        np.cumsum(trips, axis=1, out=prefix[:, WET_SPELL_MINUTES:])
        recent = prefix[:, WET_SPELL_MINUTES:] - prefix[:, :minutes]
        wet[rows] = np.maximum(wet[rows], recent > 0)
    return wet
