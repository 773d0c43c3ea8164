"""What real sites, owners and links add to a healthy heater's telemetry (the field calibration).

A fault is only as visible as the spread of healthy heaters around it, so a field fleet carries:

- line voltage: each site's service voltage (ANSI C84.1 range A, ±5 % of 240 V; some multi-family
  sites on 208 V) and each element's resistance tolerance set its power (P ∝ V²/R), and the voltage
  sags a little at the evening peak and wanders hour by hour;
- sensors: each tank and outlet thermistor reads off by a fixed offset that drifts slowly; the
  controller holds its own (upper) reading at the setpoint, so the water is off by the offset;
- the link: Wi-Fi drop-outs of minutes, now and then an outage of hours (router or power off), and
  in live telemetry a duplicated reading now and then (QoS 1 redelivery);
- nuisance error codes: a transient sensor, relay or mixing-valve code for a few minutes;
- false leak-sensor trips: condensation on humid summer days, relief-valve drips on sites without an
  expansion tank; the unit shows E799 while its leak sensor is wet, whatever wet it;
- background flows: a dripping hot tap for weeks (make-up flow with no draw, like a seep), and
  recirculation loops and poorer insulation (more standby loss);
- owners: setpoint changes a few times a year, vacation mode (35 °C) while away;
- seasons and regions: more hot water in winter (colder mains, a larger hot share), condensation
  in summer; water hardness by region is in firmware_sim/hazards.py.

Everything here draws from the field calibration's own random streams. docs/telemetry.md gives each
figure and its source or reasoning.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from firmware_sim.faults import SENSOR_RAILS_C, FaultEffects
from firmware_sim.hazards import HOURS_PER_YEAR
from firmware_sim.parameters import SETPOINT_SHARES, SETPOINTS_F
from firmware_sim.sensors import reported
from shared.features import WINDOW_FIELDS, TelemetryWindow
from shared.telemetry import SETPOINT_MIN_C, ErrorCode, f_to_c

NOMINAL_V = 240.0
SITE_VOLTAGE_SD = 0.02  # share of nominal, clipped to ANSI range A
ANSI_RANGE_A = (0.95, 1.05)
SHARE_208V = 0.05
ELEMENT_RESISTANCE_TOLERANCE = 0.05
EVENING_SAG = 0.015
HOURLY_VOLTAGE_SD = 0.006
SENSOR_OFFSET_SD_K = 0.3
SENSOR_DRIFT_SD_K_PER_YEAR = 0.1
INSULATION_SD = 0.1
RECIRCULATION_SHARE = 0.05
RECIRCULATION_UA_FACTOR = (1.6, 2.5)
#: link drop-outs: median starts per minute (one every ~1.4 days), spread between sites, and lengths
GAP_START_MEDIAN_PER_MIN = 1.0 / 2000.0
GAP_START_SIGMA = 1.0
GAP_MINUTES_MEDIAN = 4.0
GAP_MINUTES_SIGMA = 1.2
OUTAGES_PER_YEAR = 2.0
OUTAGE_HOURS = (2.0, 36.0)
DUPLICATE_SHARE = 0.003
#: nuisance codes: share of heaters prone to them, their episodes per day, and which codes
NUISANCE_PRONE_SHARE = 0.4
NUISANCE_PER_DAY_MEDIAN = 1.0 / 14.0
NUISANCE_MINUTES = (1, 10)
NUISANCE_CODES = (
    ErrorCode.UPPER_TANK_SENSOR,
    ErrorCode.LOWER_TANK_SENSOR,
    ErrorCode.DHW_SENSOR,
    ErrorCode.UPPER_ELEMENT,
    ErrorCode.LOWER_ELEMENT,
    ErrorCode.MIXING_VALVE,
)
NUISANCE_CODE_SHARES = (0.15, 0.15, 0.15, 0.125, 0.125, 0.3)
#: false leak-sensor trips (chance per minute that a wet spell starts)
CONDENSATION_SHARE = 0.15
CONDENSATION_PER_MIN = 0.0003  # at the height of summer
RELIEF_DRIP_SHARE = 0.1
RELIEF_DRIP_PER_MIN = 0.0001
_HUMID_PEAK_DAY = 200.0
#: dripping hot taps: chance a day one starts and ends, and its flow (L/min)
DRIP_START_PER_DAY = 0.003
DRIP_END_PER_DAY = 0.05
DRIP_L_PER_MIN_MEDIAN = 0.05
DRIP_L_PER_MIN_RANGE = (0.01, 0.3)
#: owners' setpoint changes a year, and the share who set vacation mode while away
SETPOINT_CHANGES_PER_YEAR = 1.5
VACATION_MODE_SHARE = 0.35
#: winter hot-water use over the year's mean (colder mains, larger hot share)
WINTER_USE_SWING = 0.12
_COLDEST_DAY = 45.0
_YEAR_DAYS = 365.2425


class SiteNoise:
    """The sites, owners and links of ``n`` heaters; per-block methods in the order the fleet calls them."""

    def __init__(self, n: int, setpoint_c: np.ndarray, tank_age_years: np.ndarray, start: datetime, rng):
        self.n = n
        self._start_day = np.datetime64(start.replace(tzinfo=None), "m").astype("datetime64[D]").astype(np.int64)
        site_v = np.clip(1.0 + SITE_VOLTAGE_SD * rng.standard_normal(n), *ANSI_RANGE_A)
        self.site_voltage = np.where(rng.random(n) < SHARE_208V, 208.0 / NOMINAL_V, site_v)
        self.element_factor = 1.0 / (1.0 + rng.uniform(-1, 1, (n, 2)) * ELEMENT_RESISTANCE_TOLERANCE)
        drift = SENSOR_DRIFT_SD_K_PER_YEAR * rng.standard_normal((n, 3))  # upper, lower, outlet
        self.drift_k_per_h = drift / HOURS_PER_YEAR
        self.offset_k = SENSOR_OFFSET_SD_K * rng.standard_normal((n, 3)) + drift * tank_age_years[:, None]
        recirculation = rng.random(n) < RECIRCULATION_SHARE
        self.ua_factor = rng.lognormal(0.0, INSULATION_SD, n) * np.where(
            recirculation, rng.uniform(*RECIRCULATION_UA_FACTOR, n), 1.0
        )
        self.gap_per_min = GAP_START_MEDIAN_PER_MIN * rng.lognormal(0.0, GAP_START_SIGMA, n)
        self.gap_left = np.zeros(n, np.int64)
        self.nuisance_per_min = np.where(
            rng.random(n) < NUISANCE_PRONE_SHARE,
            NUISANCE_PER_DAY_MEDIAN / 1440.0 * rng.lognormal(0.0, 1.0, n),
            0.0,
        )
        self.condensation = rng.random(n) < CONDENSATION_SHARE
        self.relief_drips = rng.random(n) < RELIEF_DRIP_SHARE
        self.vacation_mode = rng.random(n) < VACATION_MODE_SHARE
        self.drip_l = np.zeros(n)
        self.owner_setpoint_c = setpoint_c.copy()

    # --- per day -------------------------------------------------------------------------------------------------

    def day(self, draws: np.ndarray, day_index: int, rng: np.random.Generator) -> np.ndarray:
        """A day's draws ``(n, 1440)`` with the season's share of hot water and any dripping tap; the owners'
        setpoint changes of the day."""
        season = np.cos(2 * np.pi * (self._day_of_year(day_index) - _COLDEST_DAY) / _YEAR_DAYS)
        dripping = self.drip_l > 0
        ends, starts = rng.random(self.n) < DRIP_END_PER_DAY, rng.random(self.n) < DRIP_START_PER_DAY
        flow = np.clip(DRIP_L_PER_MIN_MEDIAN * rng.lognormal(0.0, 0.8, self.n), *DRIP_L_PER_MIN_RANGE)
        self.drip_l = np.where(dripping, np.where(ends, 0.0, self.drip_l), np.where(starts, flow, 0.0))
        changes = rng.random(self.n) < SETPOINT_CHANGES_PER_YEAR / 365.25
        new_f = rng.choice(SETPOINTS_F, size=self.n, p=SETPOINT_SHARES)
        self.owner_setpoint_c = np.where(changes, np.round(f_to_c(new_f), 1), self.owner_setpoint_c)
        return draws * (1.0 + WINTER_USE_SWING * season) + self.drip_l[:, None]

    def _day_of_year(self, day_index: int) -> float:
        day = np.datetime64(int(self._start_day + day_index), "D")
        return float((day - day.astype("datetime64[Y]")).astype(np.int64))

    # --- per block -----------------------------------------------------------------------------------------------

    def setpoints(self, away: np.ndarray, first_hour: int) -> tuple[np.ndarray, np.ndarray]:
        """The setpoint each unit shows, and the one its water is held at (the upper sensor's offset off)."""
        shown = np.where(away & self.vacation_mode, SETPOINT_MIN_C, self.owner_setpoint_c)
        return shown, shown - self._offsets(first_hour)[:, 0]

    def _offsets(self, hour: int) -> np.ndarray:
        return self.offset_k + self.drift_k_per_h * hour

    def effects(self, fx: FaultEffects, first_hour: int, local_hour: np.ndarray, rng: np.random.Generator) -> None:
        """Line voltage on the elements' power, false leak-sensor trips on the sensor: into ``fx`` in place."""
        n, hours = fx.upper_w.shape
        evening = np.exp(-0.5 * ((local_hour - 19.0) / 2.0) ** 2)
        voltage = self.site_voltage[:, None] * (
            1.0 - EVENING_SAG * evening + HOURLY_VOLTAGE_SD * rng.standard_normal((n, hours))
        )
        fx.upper_w *= voltage**2 * self.element_factor[:, :1]
        fx.lower_w *= voltage**2 * self.element_factor[:, 1:]
        day = self._day_of_year(first_hour // 24)
        humid = max(0.0, np.cos(2 * np.pi * (day - _HUMID_PEAK_DAY) / _YEAR_DAYS))
        false_trips = CONDENSATION_PER_MIN * humid * self.condensation + RELIEF_DRIP_PER_MIN * self.relief_drips
        fx.wet_per_min += false_trips[:, None]

    def report(self, window: TelemetryWindow, first_hour: int, rng: np.random.Generator) -> None:
        """What the unit and its link make of the readings, in place: sensor offsets, E799 while the leak sensor
        is wet, nuisance codes, and drop-outs (NaN in every field)."""
        n, minutes = window.shape
        offsets = self._offsets(first_hour)
        rails = np.asarray(SENSOR_RAILS_C, np.float32)
        for k, field in enumerate(("tank_upper_temperature", "tank_lower_temperature", "dhw_temperature")):
            values = getattr(window, field)
            railed = np.isin(values, rails)
            setattr(window, field, np.where(railed, values, reported(values + offsets[:, k : k + 1], field)))
        code = window.error_code
        code[(code == 0) & (window.wtr_ovr_sensor_use > 0)] = ErrorCode.LEAK
        self._nuisance(code, rng)
        missing = self._gaps(n, minutes, rng)
        for name in WINDOW_FIELDS:
            getattr(window, name)[missing] = np.nan

    def _nuisance(self, code: np.ndarray, rng: np.random.Generator) -> None:
        n, minutes = code.shape
        heater, minute = _starts(self.nuisance_per_min, minutes, rng)
        length = rng.integers(*NUISANCE_MINUTES, heater.size, endpoint=True)
        codes = rng.choice(np.asarray(NUISANCE_CODES, np.float32), heater.size, p=NUISANCE_CODE_SHARES)
        for h, m, k, c in zip(heater, minute, length, codes, strict=True):
            span = code[h, m : m + k]
            span[span == 0] = c

    def _gaps(self, n: int, minutes: int, rng: np.random.Generator) -> np.ndarray:
        """Missing minutes ``(n, minutes)``: drop-outs and outages, carried over from the block before."""
        outage = OUTAGES_PER_YEAR / (HOURS_PER_YEAR * 60.0)
        heater, minute = _starts(self.gap_per_min + outage, minutes, rng)
        is_outage = rng.random(heater.size) < outage / (self.gap_per_min[heater] + outage)
        length = np.where(
            is_outage,
            rng.uniform(*OUTAGE_HOURS, heater.size) * 60.0,
            GAP_MINUTES_MEDIAN * rng.lognormal(0.0, GAP_MINUTES_SIGMA, heater.size),
        )
        ends = minute + np.ceil(length).astype(np.int64)
        missing = np.zeros((n, minutes), bool)
        carried = np.flatnonzero(self.gap_left > 0)
        spans = zip(
            np.concatenate([carried, heater]),
            np.concatenate([np.zeros(carried.size, np.int64), minute]),
            np.concatenate([self.gap_left[carried], ends]),
            strict=True,
        )
        for h, first, last in spans:
            missing[h, first:last] = True
        left = self.gap_left - minutes
        np.maximum.at(left, heater, ends - minutes)
        self.gap_left = np.maximum(left, 0)
        return missing

    def duplicated(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Which of ``n`` live readings the link delivers twice."""
        return rng.random(n) < DUPLICATE_SHARE


def _starts(per_minute: np.ndarray, minutes: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Heaters and minutes at which events of per-heater rate ``per_minute`` start in ``minutes`` minutes."""
    counts = rng.poisson(per_minute * minutes)
    heater = np.repeat(np.arange(per_minute.size), counts)
    return heater, rng.integers(0, minutes, heater.size)
