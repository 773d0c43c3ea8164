"""A change in the world from a given simulated moment on, for the models to drift on and recover from.

Two things change at ``at_days`` after the simulation start (both deterministic given the fleet's seed):

- Inlet water: mains water cools (or warms) by ``inlet_shift_k`` over ``inlet_ramp_days`` (linear ramp,
  then it stays), as in a cold snap or winter mains; it never goes below ``MIN_INLET_C``. Nothing else is
  forced: the tank physics does the energy balance, so colder inlet water means longer heating, more
  electric energy per litre drawn and slower recovery, while the per-kelvin energy feature stays put.
- A new anode type: on ``new_anode_share`` of the heaters the magnesium anode is replaced by a fast-wearing
  (aluminium-type) one; they report ``device_type + device_type_suffix`` from then on. Its wear is
  front-loaded: it is spent ``anode_life_days`` after fitting (weeks, not the years the tank-life Weibull
  gives the old one), then the tank corrodes and seeps for ``corrosion_days`` before it leaks (E799), with
  the seep signature growing as ``progress ** corrosion_shape`` (< 1: early and strong, where the old
  anode's is ``** 1.5``: late). Its hydroxide by-product settles in the tank, so sediment builds up
  ``sediment_factor`` times as often. A tank replaced after a leak comes with the new anode again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shared.topics import validate_id

#: mains water stays liquid: the coldest inlet a shift can produce
MIN_INLET_C = 1.0
MAX_INLET_SHIFT_K = 15.0


@dataclass(frozen=True)
class WorldChange:
    """What changes and when; ``at_days`` counts from the simulation start."""

    at_days: float
    inlet_shift_k: float = -6.0
    inlet_ramp_days: float = 5.0
    new_anode_share: float = 0.3
    device_type_suffix: str = "-al"
    anode_life_days: tuple[float, float] = (20.0, 60.0)
    corrosion_days: tuple[float, float] = (10.0, 30.0)
    corrosion_shape: float = 0.7
    sediment_factor: float = 3.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.at_days) or self.at_days < 0:
            raise ValueError(f"the change must start at 0 days or later, got {self.at_days}")
        if not abs(self.inlet_shift_k) <= MAX_INLET_SHIFT_K:
            raise ValueError(f"inlet shift must be within ±{MAX_INLET_SHIFT_K:g} K, got {self.inlet_shift_k}")
        if not self.inlet_ramp_days >= 0:
            raise ValueError(f"inlet ramp must be 0 days or more, got {self.inlet_ramp_days}")
        if not 0.0 <= self.new_anode_share <= 1.0:
            raise ValueError(f"new anode share must be between 0 and 1, got {self.new_anode_share}")
        for name in ("anode_life_days", "corrosion_days"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                raise ValueError(f"{name} must be a range 0 < low <= high, got {getattr(self, name)}")
        if not self.corrosion_shape > 0:
            raise ValueError(f"corrosion shape must be positive, got {self.corrosion_shape}")
        if not self.sediment_factor >= 0:
            raise ValueError(f"sediment factor must be 0 or more, got {self.sediment_factor}")
        if not self.device_type_suffix:
            raise ValueError("the new anode needs a device type suffix to tell its heaters apart")
        validate_id(f"nwp500-80{self.device_type_suffix}", "device type with the new anode's suffix")

    @property
    def at_hour(self) -> int:
        """The simulated hour (from the start) the change begins with."""
        return round(self.at_days * 24)

    def shift_inlet(self, inlet_c: np.ndarray, first_hour: int) -> np.ndarray:
        """Hourly inlet temperatures ``(n, hours)`` from ``first_hour`` with the shift applied (a copy)."""
        hours = first_hour + np.arange(inlet_c.shape[1]) + 0.5 - self.at_hour
        if self.inlet_ramp_days > 0:
            ramp = np.clip(hours / (self.inlet_ramp_days * 24), 0.0, 1.0)
        else:
            ramp = (hours > 0).astype(np.float64)
        shifted = np.maximum(inlet_c + self.inlet_shift_k * ramp, MIN_INLET_C)
        return np.where(ramp > 0, shifted, inlet_c)

    def choose_heaters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Sorted indices of the heaters that get the new anode: ``round(share · n)`` of them."""
        return np.sort(rng.choice(n, size=round(self.new_anode_share * n), replace=False))

    def anode_schedule(self, who: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Hours from fitting until the tank leaks, and the hours of seeping before it, for heaters ``who``."""
        life_h = rng.uniform(*self.anode_life_days, who.size) * 24
        corrosion_h = np.round(rng.uniform(*self.corrosion_days, who.size) * 24).astype(np.int64)
        return np.round(life_h).astype(np.int64) + corrosion_h, np.maximum(corrosion_h, 1)
