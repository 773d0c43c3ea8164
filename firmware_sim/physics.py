"""Two-zone tank energy balance and element control, stepped per minute for a whole fleet at once.

Each minute, for every heater: a draw (and any leak) pushes upper-zone water out, lower-zone water
up and cold inlet water into the lower zone; both zones lose heat to the air (UA) and the bottom
loses a fixed amount; the zones exchange heat with the stratification time constant and mix if the
lower one gets hotter. The controller runs one element at a time, upper first: an element starts
when its zone reads ``differential`` below the setpoint and the restart lockout has passed, heats
at its rate and stops part-way through the minute in which its zone reaches the setpoint. The ECO
high limit cuts all heating once the upper zone passes it, until the unit is repaired.

The minute-by-minute recurrence cannot be vectorised over time, and as numpy operations over the
fleet it costs ~70 array operations a minute (about 4,000 heater-days/s for 1,000 heaters), so the
loop is compiled with numba and spread over the cores, heater by heater; everything around it
(households, faults, sensors, features) stays vectorised numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from firmware_sim.parameters import (
    BOTTOM_LOSS_W,
    ECO_LIMIT_C,
    LOCKOUT_MIN,
    LOWER_ZONE_SHARE,
    REFERENCE_TANK_L,
    REFERENCE_UA_W_PER_K,
    STRATIFICATION_TAU_MIN,
    UPPER_ZONE_SHARE,
    WATER_J_PER_KG_K,
)

#: joules in one watt-minute
_W_MIN_TO_J = 60.0


@dataclass
class BlockControls:
    """What drives the tanks through a block of ``hours`` (minutes = 60 · hours).

    Hourly arrays are ``(n, hours)``; per-minute arrays ``(n, minutes)``."""

    draw_l: np.ndarray  # per minute: hot water drawn, L
    leak_l: np.ndarray  # hourly: water lost through a leak per minute, L
    inlet_c: np.ndarray  # hourly
    ambient_c: np.ndarray  # hourly
    upper_w: np.ndarray  # hourly: electric power of the upper element when on (0 = open or disabled)
    lower_w: np.ndarray  # hourly
    lower_efficiency: np.ndarray  # hourly: share of the lower element's power that reaches the water
    start_below_k: np.ndarray  # hourly: true-temperature distance below setpoint at which an element starts
    stop_above_k: np.ndarray  # hourly: true-temperature excess over setpoint at which it stops
    jitter_k: np.ndarray | None  # per minute: thermostat chatter added to the start threshold, or None
    stuck_on: np.ndarray  # hourly bool: thermostat contacts welded, heats until the ECO trips
    heating_enabled: np.ndarray  # hourly bool: the controller may heat at all
    eco_reset: np.ndarray  # hourly bool: the ECO was reset (repair) at the start of the hour


@dataclass
class BlockRecord:
    """True state at the end of each minute, ``(n, minutes)``."""

    upper_c: np.ndarray
    lower_c: np.ndarray
    upper_on: np.ndarray  # share of the minute the upper element was energised
    lower_on: np.ndarray
    eco: np.ndarray  # ECO tripped


class TankPhysics:
    """State and fixed parameters of ``n`` tanks."""

    def __init__(
        self, tank_l: np.ndarray, setpoint_c: np.ndarray, initial_c: np.ndarray, ua_factor: np.ndarray | None = None
    ):
        """``ua_factor``: each tank's heat loss over the reference fit's (insulation, recirculation loops)."""
        self.setpoint_c = setpoint_c.astype(np.float64)
        self.upper_kg = tank_l * UPPER_ZONE_SHARE
        self.lower_kg = tank_l * LOWER_ZONE_SHARE
        ua = REFERENCE_UA_W_PER_K * (tank_l / REFERENCE_TANK_L) ** (2.0 / 3.0)
        if ua_factor is not None:
            ua = ua * ua_factor
        zone_kg = self.upper_kg + self.lower_kg
        heat_u = WATER_J_PER_KG_K * self.upper_kg
        heat_l = WATER_J_PER_KG_K * self.lower_kg
        # per-minute coefficients
        self.loss_u = ua * self.upper_kg / zone_kg * _W_MIN_TO_J / heat_u
        self.loss_l = ua * self.lower_kg / zone_kg * _W_MIN_TO_J / heat_l
        self.bottom_k = BOTTOM_LOSS_W * _W_MIN_TO_J / heat_l
        # kg/min of water whose heat crosses between the zones, so that their difference decays with the time constant
        exchange = 1.0 / (STRATIFICATION_TAU_MIN * (1.0 / self.upper_kg + 1.0 / self.lower_kg))
        self.exchange_u = exchange / self.upper_kg
        self.exchange_l = exchange / self.lower_kg
        self.mix_u = self.lower_kg / zone_kg  # share of an inversion the upper zone takes up
        self.mix_l = self.upper_kg / zone_kg
        self.k_per_w_u = _W_MIN_TO_J / heat_u
        self.k_per_w_l = _W_MIN_TO_J / heat_l

        n = len(tank_l)
        self.upper_c = initial_c.astype(np.float64).copy()
        self.lower_c = initial_c.astype(np.float64) - 1.0
        self.on_u = np.zeros(n, bool)
        self.on_l = np.zeros(n, bool)
        self.lockout = np.zeros(n)
        self.eco = np.zeros(n, bool)

    def run_block(self, c: BlockControls) -> BlockRecord:
        n, hours = c.inlet_c.shape
        minutes = hours * 60
        rec = BlockRecord(*(np.empty((n, minutes), np.float32) for _ in range(4)), eco=np.empty((n, minutes), bool))
        jitter = c.jitter_k if c.jitter_k is not None else np.zeros((n, minutes))
        _run_block(
            c.draw_l, c.leak_l, c.inlet_c, c.ambient_c, c.upper_w, c.lower_w, c.lower_efficiency,
            c.start_below_k, c.stop_above_k, jitter, c.stuck_on, c.heating_enabled, c.eco_reset,
            self.setpoint_c, self.upper_kg, self.lower_kg, self.loss_u, self.loss_l, self.bottom_k,
            self.exchange_u, self.exchange_l, self.mix_u, self.mix_l, self.k_per_w_u, self.k_per_w_l,
            self.upper_c, self.lower_c, self.on_u, self.on_l, self.lockout, self.eco,
            rec.upper_c, rec.lower_c, rec.upper_on, rec.lower_on, rec.eco,
        )  # fmt: skip
        return rec


@numba.njit(cache=True, parallel=True)
def _run_block(
    draw_l, leak_l, inlet_c, ambient_c, upper_w, lower_w, lower_efficiency,
    start_below_k, stop_above_k, jitter_k, stuck_on, heating_enabled, eco_reset,
    setpoint, upper_kg, lower_kg, loss_u, loss_l, bottom_k, exchange_u, exchange_l, mix_u, mix_l, k_per_w_u, k_per_w_l,
    state_tu, state_tl, state_on_u, state_on_l, state_lock, state_eco,
    out_tu, out_tl, out_fu, out_fl, out_eco,
):  # fmt: skip
    n, hours = inlet_c.shape
    for i in numba.prange(n):
        tu, tl = state_tu[i], state_tl[i]
        on_u, on_l, lock, eco = state_on_u[i], state_on_l[i], state_lock[i], state_eco[i]
        for h in range(hours):
            if eco_reset[i, h]:
                eco = False
            enabled = heating_enabled[i, h]
            rate_u = upper_w[i, h] * k_per_w_u[i]
            rate_l = lower_w[i, h] * lower_efficiency[i, h] * k_per_w_l[i]
            can_u = enabled and rate_u > 0.0
            can_l = enabled and rate_l > 0.0
            # an element that cannot heat never starts (the other one does all the work)
            start_at = setpoint[i] - start_below_k[i, h]
            stop_at = setpoint[i] + stop_above_k[i, h]
            if stuck_on[i, h]:
                stop_at = np.inf
                start_at = np.inf
            on_u = on_u and can_u
            on_l = on_l and can_l
            inlet, ambient, leak = inlet_c[i, h], ambient_c[i, h], leak_l[i, h]
            for t in range(h * 60, h * 60 + 60):
                draw = draw_l[i, t]
                # flow: upper takes lower-zone water, lower takes inlet water (plug flow into a mixed zone)
                if draw > 0.0:
                    tu += (tl - tu) * -np.expm1(-draw / upper_kg[i])
                if draw + leak > 0.0:
                    tl += (inlet - tl) * -np.expm1(-(draw + leak) / lower_kg[i])
                # losses to the air, bottom loss, exchange between the zones
                d = tu - tl
                tu -= loss_u[i] * (tu - ambient) + exchange_u[i] * d
                tl -= loss_l[i] * (tl - ambient) + bottom_k[i] - exchange_l[i] * d
                # a lower zone hotter than the upper one rises and mixes
                if tl > tu:
                    d = tl - tu
                    tu += d * mix_u[i]
                    tl -= d * mix_l[i]
                # control: upper element first, one element at a time
                ready = lock <= 0.0 and not eco
                threshold = start_at + jitter_k[i, t]
                if can_u and ready and tu < threshold:
                    on_u = True
                fu = 0.0
                stopped = False
                if on_u:
                    fu = min(max((stop_at - tu) / rate_u, 0.0), 1.0)
                    tu += fu * rate_u
                    if fu < 1.0:
                        on_u = False
                        stopped = True
                if on_u:
                    on_l = False
                elif can_l and ready and not stopped and tl < threshold:
                    on_l = True
                fl = 0.0
                if on_l:
                    fl = min(max((stop_at - tl) / rate_l, 0.0), 1.0)
                    tl += fl * rate_l
                    if fl < 1.0:
                        on_l = False
                        stopped = True
                lock = LOCKOUT_MIN if stopped else lock - 1.0
                # ECO high limit: latches until a repair resets it
                if tu >= ECO_LIMIT_C:
                    eco = True
                    on_u = False
                    on_l = False
                out_tu[i, t] = tu
                out_tl[i, t] = tl
                out_fu[i, t] = fu
                out_fl[i, t] = fl
                out_eco[i, t] = eco
        state_tu[i], state_tl[i] = tu, tl
        state_on_u[i], state_on_l[i], state_lock[i], state_eco[i] = on_u, on_l, lock, eco
