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
from firmware_sim.parameters import OUTLET_DROP_K, REPORTED_DECIMALS, SENSOR_NOISE_C
from firmware_sim.physics import BlockControls, BlockRecord
from shared.features import TelemetryWindow
from shared.telemetry import ErrorCode

#: a wet leak sensor stays wet this long after water reaches it
WET_SPELL_MINUTES = 8
STUCK_MINUTES = (10, 120)


def reported(values: np.ndarray, field: str) -> np.ndarray:
    """Rounded to the field's decimals: the float32 nearest the decimal number, which is also what a
    reader gets back from the JSON text of the reading."""
    return np.round(values.astype(np.float32, copy=False), REPORTED_DECIMALS[field])


def _per_minute(hourly: np.ndarray) -> np.ndarray:
    return np.repeat(hourly, 60, axis=1)


def _rows(hourly: np.ndarray) -> np.ndarray:
    """Heaters with any non-zero hourly value: the few a fault touches, so only their rows get work."""
    return np.flatnonzero(hourly.any(axis=1))


def read_sensors(
    rec: BlockRecord,
    controls: BlockControls,
    fx: FaultEffects,
    setpoint_c: np.ndarray,
    rng: np.random.Generator,
) -> TelemetryWindow:
    n, minutes = rec.upper_c.shape
    hours = minutes // 60
    half_width = np.float32(SENSOR_NOISE_C * np.sqrt(3.0))  # uniform noise with this standard deviation
    tanks = []
    for zone, (true, field) in enumerate(
        ((rec.upper_c, "tank_upper_temperature"), (rec.lower_c, "tank_lower_temperature"))
    ):
        reading = true + (rng.random((n, minutes), dtype=np.float32) * 2 - 1) * half_width
        if zone == 1:
            kettling = _rows(fx.kettling_sd_k)
            sd = _per_minute(fx.kettling_sd_k[kettling]) * (rec.lower_on[kettling] > 0)
            _add_noise(reading, kettling, sd, rng)
        _sensor_faults(reading, fx, zone, rng)
        tanks.append(reported(reading, field))

    inlet = _per_minute(reported(controls.inlet_c, "current_inlet_temperature"))
    ambient = _per_minute(reported(controls.ambient_c, "ambient_temperature"))
    flow = controls.draw_l.astype(np.float32)
    leaking = _rows(controls.leak_l)
    flow[leaking] += _per_minute(controls.leak_l[leaking])
    by_hour = (n, hours, 60)
    power = rec.upper_on.reshape(by_hour) * controls.upper_w.astype(np.float32)[:, :, None]
    power += rec.lower_on.reshape(by_hour) * controls.lower_w.astype(np.float32)[:, :, None]

    code = _per_minute(fx.error_code)
    tripped = np.flatnonzero(rec.eco.any(axis=1))
    code[tripped] = np.where(
        rec.eco[tripped] & (code[tripped] != ErrorCode.LEAK), ErrorCode.ECO_HIGH_LIMIT, code[tripped]
    )
    return TelemetryWindow(
        dhw_temperature=reported(rec.upper_c - OUTLET_DROP_K, "dhw_temperature"),
        dhw_temperature_setting=np.repeat(reported(setpoint_c, "dhw_temperature_setting")[:, None], minutes, axis=1),
        tank_upper_temperature=tanks[0],
        tank_lower_temperature=tanks[1],
        current_inlet_temperature=inlet,
        ambient_temperature=ambient,
        current_dhw_flow_rate=reported(flow, "current_dhw_flow_rate"),
        current_inst_power=reported(power.reshape(n, minutes), "current_inst_power"),
        heat_upper_use=(rec.upper_on > 0).astype(np.float32),
        heat_lower_use=(rec.lower_on > 0).astype(np.float32),
        wtr_ovr_sensor_use=_leak_sensor(fx, minutes, rng),
        error_code=code.astype(np.float32),
    )


def _add_noise(reading: np.ndarray, rows: np.ndarray, sd: np.ndarray, rng: np.random.Generator) -> None:
    """Gaussian noise of standard deviation ``sd`` (per minute) on the readings of heaters ``rows``."""
    if rows.size:
        reading[rows] += sd * rng.standard_normal((rows.size, reading.shape[1]), dtype=np.float32)


def _sensor_faults(reading: np.ndarray, fx: FaultEffects, zone: int, rng: np.random.Generator) -> None:
    minutes = reading.shape[1]
    noisy = _rows(fx.sensor_noise_sd_k[:, :, zone])
    _add_noise(reading, noisy, _per_minute(fx.sensor_noise_sd_k[noisy, :, zone]), rng)

    for row in _rows(fx.sensor_stuck_per_h[:, :, zone]):
        hours = np.flatnonzero(rng.random(fx.sensor_stuck_per_h.shape[1]) < fx.sensor_stuck_per_h[row, :, zone])
        for hour in hours:
            first = hour * 60 + int(rng.integers(0, 60))
            last = min(minutes, first + int(rng.integers(*STUCK_MINUTES)))
            reading[row, first:last] = reading[row, first]

    spiking = _rows(fx.sensor_spike_per_min[:, :, zone])
    if spiking.size:
        chance = _per_minute(fx.sensor_spike_per_min[spiking, :, zone])
        spikes = rng.random(chance.shape) < chance
        rails = np.asarray(SENSOR_RAILS_C, np.float32)[rng.integers(0, 2, chance.shape)]
        reading[spiking] = np.where(spikes, rails, reading[spiking])

    failed = np.flatnonzero(np.isfinite(fx.sensor_rail_c[:, :, zone]).any(axis=1))
    if failed.size:
        rail = _per_minute(fx.sensor_rail_c[failed, :, zone])
        reading[failed] = np.where(np.isfinite(rail), rail, reading[failed])


def _leak_sensor(fx: FaultEffects, minutes: int, rng: np.random.Generator) -> np.ndarray:
    wet = _per_minute(fx.leak_sensor_wet).astype(np.float32)
    rows = _rows(fx.wet_per_min)
    if rows.size:
        trips = rng.random((rows.size, minutes)) < _per_minute(fx.wet_per_min[rows])
        prefix = np.zeros((rows.size, minutes + WET_SPELL_MINUTES), np.int32)
        np.cumsum(trips, axis=1, out=prefix[:, WET_SPELL_MINUTES:])
        recent = prefix[:, WET_SPELL_MINUTES:] - prefix[:, :minutes]
        wet[rows] = np.maximum(wet[rows], recent > 0)
    return wet
