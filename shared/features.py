"""Feature set v1: a 24-hour window of one-minute telemetry → one feature vector per heater.

The simulator's history (training) and the edge agent (serving) both call this module, so the two
can never disagree. Everything is vectorised over heaters: a window holds one ``(n_heaters,
n_samples)`` float32 array per raw field.

How a window is read:

- A window is ``WINDOW_SAMPLES`` (1,440) one-minute samples ending at the window end; sample ``i``
  is the reading whose ``ts`` is ``end - (1439 - i)`` minutes. A missing reading is NaN in every
  field (a reading is all or nothing, see ``shared.telemetry``).
- The window is cut into four 6-hour blocks. Each block is reduced to additive statistics
  (``block_stats``) and the features come from their totals (``features_from_block_stats``), so a
  history that slides its window by 6 hours reduces each block once instead of four times and still
  gets exactly what ``compute_features`` gives. Statistics that compare neighbouring samples
  (rises, starts, noise) look only inside a block.
- Gaps: statistics use only present samples and valid neighbour pairs. Counts and volumes are
  scaled up to a full 24 h by ``1 / coverage``. Below ``MIN_COVERAGE`` every feature but
  ``coverage`` is NaN. A feature with too little evidence in the window (no heating minutes for a
  recovery rate, no draws for energy per litre) is NaN; models must accept NaN.

Each feature, its unit and the fault it reveals is in ``FEATURES`` below and in docs/telemetry.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np

from shared.messages import Component
from shared.telemetry import ERROR_FAMILIES, Telemetry

FEATURE_SET_VERSION = "v1"


class Feature(NamedTuple):
    name: str
    unit: str
    #: why the feature exists: which behaviour or fault it reveals
    meaning: str


SAMPLE_MINUTES = 1
WINDOW_SAMPLES = 24 * 60
BLOCK_SAMPLES = 6 * 60
BLOCKS_PER_WINDOW = WINDOW_SAMPLES // BLOCK_SAMPLES
#: Below this share of present samples a window says too little to compute features from.
MIN_COVERAGE = 0.5
#: Flow at or above this is a draw (a tap open); below it, flow is make-up for water lost elsewhere.
DRAW_FLOW_L_PER_MIN = 0.5
#: An element start within this many minutes of the same element's last run is a short cycle.
SHORT_CYCLE_MINUTES = 10
#: Tank water is never outside this range; a sensor reading outside it is a sensor fault.
PLAUSIBLE_TANK_C = (0.0, 95.0)

FEATURES: list[Feature] = [
    Feature(
        "coverage", "fraction", "share of the 1,440 expected samples present; gaps make other features less certain"
    ),
    Feature("setpoint_c", "°C", "context: the owner's setpoint"),
    Feature("inlet_temperature_c", "°C", "context: cold-water temperature (season) that heating must overcome"),
    Feature("ambient_temperature_c", "°C", "context: air temperature that drives standby loss"),
    Feature(
        "duty_cycle_upper", "fraction", "minutes the upper element ran; rises when an element weakens or a leak cools"
    ),
    Feature("duty_cycle_lower", "fraction", "minutes the lower element ran; rises with sediment and weak elements"),
    Feature(
        "recovery_rate_upper_c_per_min",
        "°C/min",
        "upper-zone rise while heating without a draw; falls as the element fails",
    ),
    Feature(
        "recovery_rate_lower_c_per_min",
        "°C/min",
        "lower-zone rise while heating; falls with sediment or a failing element",
    ),
    Feature(
        "element_power_upper_w",
        "W",
        "power while only the upper element runs a full minute; falls as the element degrades",
    ),
    Feature(
        "element_power_lower_w",
        "W",
        "power while only the lower element runs a full minute; falls as the element degrades",
    ),
    Feature(
        "energy_per_litre_heated_wh_per_k",
        "Wh/(L·K)",
        "electric energy per litre drawn per kelvin of rise (1.163 is lossless); rises with sediment and leaks",
    ),
    Feature(
        "standby_loss_c_per_h",
        "°C/h",
        "mean tank cooling while idle; rises with a leak's make-up water or lost insulation",
    ),
    Feature(
        "setpoint_error_mean_c", "°C", "mean upper-tank temperature minus setpoint; a drifting thermostat shifts it"
    ),
    Feature(
        "overshoot_max_c",
        "°C",
        "largest upper-tank excess over setpoint; thermostat drift overshoots, then trips the ECO",
    ),
    Feature("heating_cycles", "per 24 h", "element starts; short cycling and weak elements raise it"),
    Feature(
        "short_cycles",
        "per 24 h",
        f"starts within {SHORT_CYCLE_MINUTES} min of the same element's last run: thermostat",
    ),
    Feature("draw_volume_l", "L per 24 h", "hot water used; the household's demand, and the usage model's main input"),
    Feature("draw_count", "per 24 h", "separate draws (taps opened)"),
    Feature("draw_volume_last_6h_l", "L per 6 h", "recent demand, for the usage model"),
    Feature(
        "makeup_flow_no_draw_l", "L per 24 h", "trickle inflow with no tap open: water leaving the tank through a leak"
    ),
    Feature("leak_sensor_trips", "per 24 h", "times the water-on-floor sensor became wet; seepage before a tank leak"),
    Feature(
        "noise_upper_c", "°C", "upper sensor residual noise (second difference) in steady minutes; a failing sensor"
    ),
    Feature("noise_lower_c", "°C", "lower sensor residual noise; sediment kettling or a failing sensor"),
    Feature(
        "sensor_stuck_minutes",
        "min per 24 h",
        "full heating minutes in which a tank reading did not change: stuck sensor",
    ),
    Feature(
        "sensor_out_of_range_minutes", "min per 24 h", "tank readings outside 0–95 °C: a sensor on its rail or spiking"
    ),
    Feature("errors_heating_element", "min per 24 h", "minutes with E096/E097 (element circuit open)"),
    Feature("errors_thermostat", "min per 24 h", "minutes with E901 (ECO high limit tripped)"),
    Feature("errors_sediment", "min per 24 h", "minutes with E326 (element overheating, buried in scale)"),
    Feature("errors_tank_leak", "min per 24 h", "minutes with E799/E798 (leak detected, shut-off valve)"),
    Feature("errors_sensor", "min per 24 h", "minutes with E407/E480/E481 (temperature sensor)"),
    Feature("errors_other", "min per 24 h", "minutes with any other non-zero error code"),
    Feature("energy_wh", "Wh per 24 h", "electric energy used; a whole-heater health and usage signal"),
]
FEATURE_NAMES: list[str] = [f.name for f in FEATURES]

_ERROR_COMPONENTS = [
    Component.HEATING_ELEMENT,
    Component.THERMOSTAT,
    Component.SEDIMENT,
    Component.TANK_LEAK,
    Component.SENSOR,
]
#: error code → family index: 0 no error, 1..5 the components above, 6 other
_FAMILY_OF_CODE = np.full(1000, len(_ERROR_COMPONENTS) + 1, dtype=np.uint8)
_FAMILY_OF_CODE[0] = 0
for _index, _component in enumerate(_ERROR_COMPONENTS, start=1):
    _FAMILY_OF_CODE[sorted(ERROR_FAMILIES[_component])] = _index


@dataclass
class TelemetryWindow:
    """Raw telemetry of ``n_heaters`` over ``n_samples`` minutes: float32 arrays, NaN where missing,
    booleans as 0/1. Field names are those of ``shared.telemetry.Telemetry``."""

    dhw_temperature: np.ndarray
    dhw_temperature_setting: np.ndarray
    tank_upper_temperature: np.ndarray
    tank_lower_temperature: np.ndarray
    current_inlet_temperature: np.ndarray
    ambient_temperature: np.ndarray
    current_dhw_flow_rate: np.ndarray
    current_inst_power: np.ndarray
    heat_upper_use: np.ndarray
    heat_lower_use: np.ndarray
    wtr_ovr_sensor_use: np.ndarray
    error_code: np.ndarray

    def __post_init__(self) -> None:
        shapes = {getattr(self, name).shape for name in WINDOW_FIELDS}
        if len(shapes) != 1 or len(next(iter(shapes))) != 2:
            raise ValueError(f"window fields must share one (n_heaters, n_samples) shape, got {shapes}")

    @property
    def shape(self) -> tuple[int, int]:
        return self.tank_upper_temperature.shape

    @classmethod
    def empty(cls, n_heaters: int, n_samples: int = WINDOW_SAMPLES) -> TelemetryWindow:
        return cls(**{name: np.full((n_heaters, n_samples), np.nan, np.float32) for name in WINDOW_FIELDS})

    def columns(self, start: int, stop: int) -> TelemetryWindow:
        """The samples ``start:stop`` of every field (views, no copy)."""
        return TelemetryWindow(**{name: getattr(self, name)[:, start:stop] for name in WINDOW_FIELDS})


WINDOW_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(TelemetryWindow))

# Block statistics: additive per block (summed over blocks), except those in _MAX_STATS.
_STATS = [
    "present",
    "setpoint",
    "inlet",
    "ambient",
    "on_upper",
    "on_lower",
    "rise_upper",
    "rise_upper_n",
    "rise_lower",
    "rise_lower_n",
    "power_upper",
    "power_upper_n",
    "power_lower",
    "power_lower_n",
    "energy_wh",
    "heat_l_k",
    "idle_drop",
    "idle_n",
    "setpoint_error",
    "overshoot_max",
    "starts",
    "short_starts",
    "draw_volume",
    "draw_events",
    "makeup_volume",
    "leak_trips",
    "noise_upper",
    "noise_upper_n",
    "noise_lower",
    "noise_lower_n",
    "stuck",
    "out_of_range",
    "err_heating_element",
    "err_thermostat",
    "err_sediment",
    "err_tank_leak",
    "err_sensor",
    "err_other",
]
N_STATS = len(_STATS)
_S = {name: i for i, name in enumerate(_STATS)}
_MAX_STATS = ("overshoot_max",)


def _count(mask: np.ndarray) -> np.ndarray:
    """True values per row (a byte sum: several times faster than ``count_nonzero`` along an axis)."""
    return mask.view(np.uint8).sum(axis=1, dtype=np.int32)


def _masked_sum(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Row sums of ``values`` where ``mask`` (a row-wise dot product: no temporary, no branches)."""
    return np.einsum("ij,ij->i", values, mask.astype(np.float32))


def _shift_any(mask: np.ndarray, first: int, last: int) -> np.ndarray:
    """For t = 1..S-1: was ``mask`` true at any of t-last .. t-first (only samples inside the block)?"""
    s = mask.shape[1]
    seen = np.zeros((mask.shape[0], s - 1), bool)
    for lag in range(first, last + 1):
        if lag < s:
            seen[:, lag - 1 :] |= mask[:, : s - lag]
    return seen


def block_stats(block: TelemetryWindow) -> np.ndarray:
    """Reduce one block of samples to ``(n_heaters, N_STATS)`` float64 statistics (see module doc)."""
    n, samples = block.shape
    present = np.isfinite(block.tank_upper_temperature)
    complete = bool(present.all())
    raw = {name: getattr(block, name) for name in WINDOW_FIELDS}
    if not complete:
        raw = {name: np.nan_to_num(values, nan=0.0) for name, values in raw.items()}
    upper, lower = raw["tank_upper_temperature"], raw["tank_lower_temperature"]
    setpoint, flow, power = raw["dhw_temperature_setting"], raw["current_dhw_flow_rate"], raw["current_inst_power"]
    on_u, on_l = raw["heat_upper_use"] > 0.5, raw["heat_lower_use"] > 0.5
    draw = flow >= DRAW_FLOW_L_PER_MIN
    pair = present[:, 1:] & present[:, :-1]  # sample t and t-1 both present, t = 1..S-1
    triple = pair[:, :-1] & present[:, 2:]  # t-1, t, t+1 present, t = 1..S-2
    mid = slice(1, -1)
    ones = np.ones(samples, np.float32)

    out = np.zeros((n, N_STATS), np.float64)

    def put(name: str, values: np.ndarray) -> None:
        out[:, _S[name]] = values

    put("present", _count(present))
    put("setpoint", setpoint @ ones)
    put("inlet", raw["current_inlet_temperature"] @ ones)
    put("ambient", raw["ambient_temperature"] @ ones)
    put("on_upper", _count(on_u))
    put("on_lower", _count(on_l))
    put("energy_wh", (power @ ones) / 60.0)

    # Full heating minutes (element on in this and the next minute: stops fall mid-minute), no draw.
    no_draw_mid = ~draw[:, mid] & triple
    for zone, temp, on, other in (("upper", upper, on_u, on_l), ("lower", lower, on_l, on_u)):
        full = on[:, mid] & on[:, 2:] & no_draw_mid
        rise = temp[:, mid] - temp[:, :-2]
        put(f"rise_{zone}", _masked_sum(rise, full))
        put(f"rise_{zone}_n", _count(full))
        alone = full & ~other[:, mid]
        put(f"power_{zone}", _masked_sum(power[:, mid], alone))
        put(f"power_{zone}_n", _count(alone))
        out[:, _S["stuck"]] += _count(full & (rise == 0))

    delivered = flow * (raw["dhw_temperature"] - raw["current_inlet_temperature"])
    put("heat_l_k", _masked_sum(delivered, draw))

    both = upper + lower
    idle = ~on_u[:, 1:] & ~on_l[:, 1:] & ~draw[:, 1:] & pair
    put("idle_drop", 0.5 * _masked_sum(both[:, :-1] - both[:, 1:], idle))
    put("idle_n", _count(idle))

    excess = upper - setpoint
    put("setpoint_error", excess @ ones)
    low, high = PLAUSIBLE_TANK_C
    plausible_u = (upper >= low) & (upper <= high) & present
    plausible_l = (lower >= low) & (lower <= high) & present
    overshoot = excess.max(axis=1).astype(np.float64)
    doubtful = np.flatnonzero(~plausible_u.all(axis=1))
    if doubtful.size:  # only rows with a gap or an implausible reading need the slow masked maximum
        overshoot[doubtful] = np.where(plausible_u[doubtful], excess[doubtful], -np.inf).max(axis=1)
    put("overshoot_max", overshoot)
    put("out_of_range", _count(present & ~plausible_u) + _count(present & ~plausible_l))

    for on in (on_u, on_l):
        start = on[:, 1:] & ~on[:, :-1] & pair  # t = 1..S-1
        out[:, _S["starts"]] += _count(start)
        out[:, _S["short_starts"]] += _count(start & _shift_any(on, 2, SHORT_CYCLE_MINUTES))

    put("draw_volume", _masked_sum(flow, draw))
    put("draw_events", _count(draw[:, 1:] & ~draw[:, :-1] & pair))
    trickle = (flow[:, mid] > 0) & ~draw[:, mid] & ~draw[:, :-2] & ~draw[:, 2:] & triple
    put("makeup_volume", _masked_sum(flow[:, mid], trickle))
    wet = raw["wtr_ovr_sensor_use"] > 0.5
    put("leak_trips", _count(wet[:, 1:] & ~wet[:, :-1] & pair))

    # Residual noise: second difference in minutes with no draw and no element switching around them.
    switching = (on_u[:, 1:] ^ on_u[:, :-1]) | (on_l[:, 1:] ^ on_l[:, :-1])
    steady = triple & ~switching[:, :-1] & ~switching[:, 1:] & ~(draw[:, :-2] | draw[:, mid] | draw[:, 2:])
    for zone, temp in (("upper", upper), ("lower", lower)):
        residual = temp[:, mid] - 0.5 * (temp[:, :-2] + temp[:, 2:])
        put(f"noise_{zone}", _masked_sum(residual * residual, steady))
    out[:, _S["noise_upper_n"]] = out[:, _S["noise_lower_n"]] = _count(steady)

    codes = raw["error_code"]
    faulty = np.flatnonzero(codes.any(axis=1))  # most heaters report no error all block
    if faulty.size:
        family = _FAMILY_OF_CODE[np.clip(codes[faulty], 0, 999).astype(np.int16)]
        for index, component in enumerate(_ERROR_COMPONENTS, start=1):
            out[faulty, _S[f"err_{component.value}"]] = _count(family == index)
        out[faulty, _S["err_other"]] = _count(family == len(_ERROR_COMPONENTS) + 1)
    return out


def _ratio(numerator: np.ndarray, denominator: np.ndarray, minimum: float) -> np.ndarray:
    """numerator / denominator where the denominator reaches ``minimum``, else NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator >= minimum, numerator / denominator, np.nan)


def features_from_block_stats(stats: np.ndarray) -> np.ndarray:
    """``(n_heaters, BLOCKS_PER_WINDOW, N_STATS)`` block statistics → ``(n_heaters, n_features)`` float32."""
    if stats.ndim != 3 or stats.shape[1:] != (BLOCKS_PER_WINDOW, N_STATS):
        raise ValueError(f"expected (n, {BLOCKS_PER_WINDOW}, {N_STATS}) block statistics, got {stats.shape}")
    total = stats.sum(axis=1)
    for name in _MAX_STATS:
        total[:, _S[name]] = stats[:, :, _S[name]].max(axis=1)
    t = {name: total[:, i] for name, i in _S.items()}
    present = t["present"]
    coverage = present / WINDOW_SAMPLES
    per_day = _ratio(np.full_like(present, WINDOW_SAMPLES), present, 1)
    last = stats[:, -1, :]

    f = {
        "coverage": coverage,
        "setpoint_c": _ratio(t["setpoint"], present, 1),
        "inlet_temperature_c": _ratio(t["inlet"], present, 1),
        "ambient_temperature_c": _ratio(t["ambient"], present, 1),
        "duty_cycle_upper": _ratio(t["on_upper"], present, 1),
        "duty_cycle_lower": _ratio(t["on_lower"], present, 1),
        "recovery_rate_upper_c_per_min": _ratio(t["rise_upper"], t["rise_upper_n"], 3),
        "recovery_rate_lower_c_per_min": _ratio(t["rise_lower"], t["rise_lower_n"], 3),
        "element_power_upper_w": _ratio(t["power_upper"], t["power_upper_n"], 3),
        "element_power_lower_w": _ratio(t["power_lower"], t["power_lower_n"], 3),
        "energy_per_litre_heated_wh_per_k": _ratio(t["energy_wh"], t["heat_l_k"], 200.0),
        "standby_loss_c_per_h": 60.0 * _ratio(t["idle_drop"], t["idle_n"], 30),
        "setpoint_error_mean_c": _ratio(t["setpoint_error"], present, 1),
        "overshoot_max_c": np.where(np.isfinite(t["overshoot_max"]), t["overshoot_max"], np.nan),
        "heating_cycles": t["starts"] * per_day,
        "short_cycles": t["short_starts"] * per_day,
        "draw_volume_l": t["draw_volume"] * per_day,
        "draw_count": t["draw_events"] * per_day,
        "draw_volume_last_6h_l": _ratio(last[:, _S["draw_volume"]] * BLOCK_SAMPLES, last[:, _S["present"]], 1),
        "makeup_flow_no_draw_l": t["makeup_volume"] * per_day,
        "leak_sensor_trips": t["leak_trips"] * per_day,
        "noise_upper_c": np.sqrt(_ratio(t["noise_upper"], 1.5 * t["noise_upper_n"], 15.0)),
        "noise_lower_c": np.sqrt(_ratio(t["noise_lower"], 1.5 * t["noise_lower_n"], 15.0)),
        "sensor_stuck_minutes": t["stuck"] * per_day,
        "sensor_out_of_range_minutes": t["out_of_range"] * per_day,
        **{f"errors_{c.value}": t[f"err_{c.value}"] * per_day for c in _ERROR_COMPONENTS},
        "errors_other": t["err_other"] * per_day,
        "energy_wh": t["energy_wh"] * per_day,
    }
    result = np.stack([f[name] for name in FEATURE_NAMES], axis=1).astype(np.float32)
    result[coverage < MIN_COVERAGE, 1:] = np.nan
    return result


def compute_features(window: TelemetryWindow) -> np.ndarray:
    """Feature vectors ``(n_heaters, len(FEATURE_NAMES))`` float32 of a full 24-hour window."""
    n, samples = window.shape
    if samples != WINDOW_SAMPLES:
        raise ValueError(f"a feature window has {WINDOW_SAMPLES} one-minute samples, got {samples}")
    stats = np.stack(
        [block_stats(window.columns(b * BLOCK_SAMPLES, (b + 1) * BLOCK_SAMPLES)) for b in range(BLOCKS_PER_WINDOW)],
        axis=1,
    )
    return features_from_block_stats(stats)


def _minute_floor(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


def window_from_readings(readings: Sequence[Telemetry], end: datetime | None = None) -> TelemetryWindow:
    """One heater's window from its readings (any order): the 1,440 minutes ending at ``end``
    (default: the latest reading). Readings are placed on the minute nearest their ``ts``; readings
    outside the window are ignored, a later duplicate of a minute replaces an earlier one."""
    if not readings:
        raise ValueError("no readings to build a window from")
    if len({r.device_id for r in readings}) != 1:
        raise ValueError("a window from readings holds one heater; got several device ids")
    end_minute = _minute_floor(end if end is not None else max(r.ts for r in readings))
    window = TelemetryWindow.empty(1)
    for reading in sorted(readings, key=lambda r: r.seq):
        offset = round((end_minute - reading.ts).total_seconds() / 60.0)
        index = WINDOW_SAMPLES - 1 - offset
        if 0 <= index < WINDOW_SAMPLES:
            for name in WINDOW_FIELDS:
                getattr(window, name)[0, index] = float(getattr(reading, name))
    return window
