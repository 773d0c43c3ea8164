"""Inlet water and room air temperature of each heater's site, hour by hour.

Mains water follows the seasons with a lag (coldest in mid-February); the air around a heater in a
utility room or garage follows them less, plus a daily swing peaking in the afternoon. The
reference unit's 72.4 °F (22.4 °C) inlet is one warm indoor site; the fleet spreads around typical
mains temperatures.
"""

from __future__ import annotations

import numpy as np

_YEAR_DAYS = 365.2425
_COLDEST_INLET_DAY = 45.0
_COLDEST_AIR_DAY = 20.0
_WARMEST_HOUR = 16.0


class Climate:
    def __init__(self, n: int, rng: np.random.Generator, utc_offset_h: np.ndarray):
        self.inlet_mean = rng.uniform(9.0, 19.0, n)
        self.inlet_swing = rng.uniform(2.0, 8.0, n)
        self.air_mean = rng.uniform(15.0, 23.0, n)
        self.air_season_swing = rng.uniform(0.5, 6.0, n)
        self.air_day_swing = rng.uniform(0.3, 2.0, n)
        self.utc_offset_h = utc_offset_h

    def hourly(self, first_hour: np.datetime64, hours: int) -> tuple[np.ndarray, np.ndarray]:
        """Inlet and air temperatures (°C), each ``(n, hours)``, for the hours starting at ``first_hour``."""
        epoch_hours = first_hour.astype("datetime64[h]").astype(np.float64) + np.arange(hours) + 0.5
        day_of_year = (epoch_hours / 24.0) % _YEAR_DAYS
        inlet_phase = np.cos(2 * np.pi * (day_of_year - _COLDEST_INLET_DAY) / _YEAR_DAYS)
        air_phase = np.cos(2 * np.pi * (day_of_year - _COLDEST_AIR_DAY) / _YEAR_DAYS)
        local_hour = (epoch_hours[None, :] + self.utc_offset_h[:, None]) % 24.0
        inlet = self.inlet_mean[:, None] - self.inlet_swing[:, None] * inlet_phase[None, :]
        air = (
            self.air_mean[:, None]
            - self.air_season_swing[:, None] * air_phase[None, :]
            + self.air_day_swing[:, None] * np.cos(2 * np.pi * (local_hour - _WARMEST_HOUR) / 24.0)
        )
        return inlet, air
