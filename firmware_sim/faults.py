"""Fault modes: when each heater's components fail, how the failure builds up, and what it does.

Every mode has, per heater, a failure hour and a progression length before it. Severity ``x`` rises
from 0 at onset to 1 at failure (``x = progress ** shape``) and drives the physical signature; at
the failure hour the component fails outright, a ground-truth ``FailureEvent`` is recorded, the
unit shows the matching error code until a technician replaces the component (0.5–3 days later),
and a new failure time is drawn from the repair on. With an ``AlertDispatch`` (firmware_sim/dispatch.py)
some faults are caught while they build up: the worn part is replaced before it fails, a
``PreventiveRepair`` is recorded instead of the failure, and the new part's schedule starts then.

- heating element (upper or lower): power falls to 65 % (recovery slows), then the circuit opens:
  E096 / E097 (iCOMM 21 / 22); the other element does all the work.
- thermostat: the control reads ever lower (overshoot up to 8 K), its differential collapses and it
  chatters (short cycling); finally the contacts weld, the tank heats to the ECO limit: E901.
- sediment: scale insulates the lower element: less of its power reaches the water (energy per
  litre rises, the lower zone heats slower) and the kettling makes the lower reading noisy;
  finally the buried element overheats: E326 and the lower element is locked out.
- tank leak: the anode depletes and the tank corrodes for years without a signature, then seeps:
  make-up inflow with no draw grows and the leak sensor gets wet now and then; finally the
  sensor stays wet: E799. A ``WorldChange`` can fit a fast-wearing anode on some heaters (see
  firmware_sim/world_change.py): their tanks seep within weeks, and sediment builds up more often.
- sensor (upper or lower tank sensor): noise grows, readings stick and spike to a rail; finally
  the sensor sits on its rail: E480 / E481 and the controller stops heating.

Without ``field`` hazards (the accelerated calibration) failure frequencies are far above real life
(a heater fails about every two to three years here) so that a 1,000-heater, 180-day history holds a
few dozen failures of each kind to learn from; tank leaks follow the insurance study instead: tank
lives averaging 10.7 years (Weibull, shape 3), with the fleet's ages drawn as in a steady state of
replacements. With them (the field calibration, firmware_sim/hazards.py) failures depend on the
part's age, the water's hardness and the household's use, some come without warning, some come and
go, and each episode's signature has its own strength.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from firmware_sim.dispatch import NEVER, REPAIR_HOURS, AlertDispatch
from firmware_sim.hazards import FieldHazards
from firmware_sim.parameters import ELEMENT_W, REENGAGE_BELOW_K
from firmware_sim.world_change import WorldChange
from shared.messages import Component
from shared.telemetry import ErrorCode

HOURS_PER_YEAR = 365.25 * 24
UPPER, LOWER = 0, 1
TANK_LIFE_WEIBULL_SHAPE = 3.0
TANK_LIFE_SCALE_YEARS = 12.0  # mean life 12 · Γ(4/3) = 10.7 years
ELEMENT_END_POWER = 0.65
THERMOSTAT_MAX_OVERSHOOT_K = 8.0
SEDIMENT_END_EFFICIENCY = 0.5
SEEP_START_L_PER_MIN = 0.002
SEEP_END_L_PER_MIN = 0.3
LEAK_L_PER_MIN = 0.4
#: a failed sensor sits on one of its rails (open circuit reads cold, short circuit hot)
SENSOR_RAILS_C = (-30.0, 125.0)


@dataclass(frozen=True)
class FailureEvent:
    """Ground truth: ``component`` of ``device_id`` failed at ``failed_at`` and was replaced at ``repaired_at``."""

    device_id: str
    component: Component
    failed_at: datetime
    repaired_at: datetime
    error_code: int


@dataclass(frozen=True)
class PreventiveRepair:
    """Ground truth: a technician sent by an alert replaced the worn ``component`` of ``device_id`` at
    ``replaced_at``; it would have failed at ``would_fail_at`` (firmware_sim/dispatch.py)."""

    device_id: str
    component: Component
    replaced_at: datetime
    would_fail_at: datetime


@dataclass(frozen=True)
class MaintenanceEvent:
    """Ground truth: the owner had ``kind`` done to ``device_id`` at ``at`` (``flush``: the tank flushed)."""

    device_id: str
    kind: str
    at: datetime


@dataclass(frozen=True)
class FaultMode:
    component: Component
    per_year: float  # failure rate of a healthy component (tank leaks: see module doc)
    progression_days: tuple[float, float]
    shape: float


FAULT_MODES = {
    Component.HEATING_ELEMENT: FaultMode(Component.HEATING_ELEMENT, 0.08, (10, 40), 1.5),
    Component.THERMOSTAT: FaultMode(Component.THERMOSTAT, 0.07, (14, 45), 1.5),
    Component.SEDIMENT: FaultMode(Component.SEDIMENT, 0.07, (30, 90), 2.0),
    Component.TANK_LEAK: FaultMode(Component.TANK_LEAK, 0.0, (7, 30), 1.5),
    Component.SENSOR: FaultMode(Component.SENSOR, 0.07, (7, 30), 1.5),
}


@dataclass
class FaultEffects:
    """What the faults do during a block, arrays ``(n, hours)`` (sensor arrays ``(n, hours, 2)``, upper/lower)."""

    upper_w: np.ndarray
    lower_w: np.ndarray
    lower_efficiency: np.ndarray
    start_below_k: np.ndarray
    stop_above_k: np.ndarray
    jitter_sd_k: np.ndarray
    stuck_on: np.ndarray
    heating_enabled: np.ndarray
    eco_reset: np.ndarray
    leak_l: np.ndarray
    wet_per_min: np.ndarray  # chance a minute starts a wet spell of the leak sensor
    leak_sensor_wet: np.ndarray  # bool: wet all the time (leak)
    kettling_sd_k: np.ndarray  # extra lower-sensor noise while the lower element runs
    sensor_noise_sd_k: np.ndarray  # (n, hours, 2)
    sensor_stuck_per_h: np.ndarray  # (n, hours, 2)
    sensor_spike_per_min: np.ndarray  # (n, hours, 2)
    sensor_rail_c: np.ndarray  # (n, hours, 2): the rail a failed sensor reads, NaN if working
    error_code: np.ndarray  # int16, without the per-minute ECO trip


class Faults:
    """Fault schedule of ``n`` heaters in whole hours since the simulation start."""

    def __init__(
        self,
        device_ids: list[str],
        start: datetime,
        rng: np.random.Generator,
        field: FieldHazards | None = None,
        dispatch: AlertDispatch | None = None,
        dispatch_rng: np.random.Generator | None = None,
    ):
        n = len(device_ids)
        self.device_ids = device_ids
        self.start = start
        self.hardness = rng.lognormal(0.0, 0.4, n)  # scales the sediment rate
        self.base_lower_efficiency = 1.0 - rng.uniform(0.0, 0.04, n)
        self.sensor_rail_c = rng.choice(SENSOR_RAILS_C, n)
        self.sediment_rate = np.ones(n)  # a new anode's by-product adds to the water's hardness
        self.new_anode = np.zeros(n, bool)
        self.anode: WorldChange | None = None
        self.anode_rng: np.random.Generator | None = None
        self.anode_fit_h = NEVER
        self.anode_fit_who = np.zeros(0, np.int64)
        self.fail_h: dict[Component, np.ndarray] = {}
        self.progress_h: dict[Component, np.ndarray] = {}
        self.repair_h: dict[Component, np.ndarray] = {}
        self.variant: dict[Component, np.ndarray] = {}
        #: hour a technician sent by an alert replaces the worn part (NEVER: no alert caught the fault)
        self.prevent_h: dict[Component, np.ndarray] = {}
        self.field = field
        self.dispatch, self.dispatch_rng = dispatch, dispatch_rng
        #: the preventive replacements so far, in time order (with ``dispatch`` only)
        self.preventive: list[PreventiveRepair] = []
        #: with field hazards: the hour each owner who flushes has the tank flushed next, and the flushes so far
        self.flush_h = np.full(n, NEVER, np.int64)
        self.maintenance: list[MaintenanceEvent] = []
        #: with field hazards: the heater's age (years) at each failure, in the order of the events
        self.ages_at_failure: list[float] = []
        everyone = np.arange(n)
        for component in FAULT_MODES:
            self.fail_h[component] = np.zeros(n, np.int64)
            self.progress_h[component] = np.ones(n, np.int64)
            self.repair_h[component] = np.full(n, NEVER, np.int64)
            self.prevent_h[component] = np.full(n, NEVER, np.int64)
            self.variant[component] = np.zeros(n, np.int8)
        if field is not None:
            for component in FAULT_MODES:
                first = field.initial_tank_remaining_h if component is Component.TANK_LEAK else None
                self._schedule(component, everyone, 0, rng, first)
            flushers = np.flatnonzero(field.flushes)
            self.flush_h[flushers] = field.hours_to_flush(flushers, first=True)
            return
        # a steady-state fleet: tank ages drawn length-biased, failures memoryless from now
        biased_life_y = TANK_LIFE_SCALE_YEARS * rng.gamma(1.0 + 1.0 / TANK_LIFE_WEIBULL_SHAPE, 1.0, n) ** (
            1.0 / TANK_LIFE_WEIBULL_SHAPE
        )
        remaining_h = biased_life_y * (1.0 - rng.random(n)) * HOURS_PER_YEAR
        for component in FAULT_MODES:
            first = remaining_h if component is Component.TANK_LEAK else None
            self._schedule(component, everyone, 0, rng, first)

    def _schedule(
        self,
        component: Component,
        who: np.ndarray,
        from_hour: int,
        rng: np.random.Generator,
        waiting_h: np.ndarray | None = None,
    ) -> None:
        mode = FAULT_MODES[component]
        if self.field is not None:
            factor = self.sediment_rate[who] if component is Component.SEDIMENT else None
            waiting_h, progress_h = self.field.draw(component, who, from_hour, rng, waiting_h, factor)
        elif waiting_h is None:
            if component is Component.TANK_LEAK:  # a new tank
                waiting_h = TANK_LIFE_SCALE_YEARS * rng.weibull(TANK_LIFE_WEIBULL_SHAPE, who.size) * HOURS_PER_YEAR
            else:
                sediment = component is Component.SEDIMENT
                rate = mode.per_year * (self.hardness[who] * self.sediment_rate[who] if sediment else 1.0)
                waiting_h = rng.exponential(1.0, who.size) / rate * HOURS_PER_YEAR
        self.fail_h[component][who] = from_hour + 1 + np.minimum(waiting_h, NEVER / 2).astype(np.int64)
        if self.field is None:
            low, high = mode.progression_days
            progress_h = np.round(rng.uniform(low, high, who.size) * 24).astype(np.int64)
        self.progress_h[component][who] = progress_h
        self.repair_h[component][who] = NEVER
        self.variant[component][who] = rng.integers(0, 2, who.size)
        if component is Component.TANK_LEAK and self.anode is not None:  # a new tank gets the new anode too
            fitted = who[self.new_anode[who]]
            waiting_h, corrosion_h = self.anode.anode_schedule(fitted, self.anode_rng)
            self.fail_h[component][fitted] = from_hour + 1 + waiting_h
            self.progress_h[component][fitted] = corrosion_h
        self._alert(component, who)

    def _alert(self, component: Component, who: np.ndarray) -> None:
        """Whether an alert catches the fault episodes just scheduled, and when the technician comes."""
        if self.dispatch is not None:
            fail_h, progress_h = self.fail_h[component][who], self.progress_h[component][who]
            self.prevent_h[component][who] = self.dispatch.visits(fail_h, progress_h, self.dispatch_rng)

    def fit_new_anode(self, who: np.ndarray, hour: int, change: WorldChange, rng: np.random.Generator) -> None:
        """From ``hour`` on, heaters ``who`` carry ``change``'s anode; its draws come from ``rng`` (the
        change's own stream, so the other heaters' faults stay as they were)."""
        if self.anode is not None:
            raise ValueError("a new anode type is already scheduled")
        self.anode, self.anode_rng, self.anode_fit_h, self.anode_fit_who = change, rng, hour, who

    def _fit_anode(self, hour: int) -> None:
        """Fit the new anode: tanks and sediment not already on their way to failing are rescheduled (an old
        tank due to leak before the new anode is spent still leaks when it would have)."""
        who = self.anode_fit_who
        self.new_anode[who] = True
        self.sediment_rate[who] = self.anode.sediment_factor
        for component in (Component.TANK_LEAK, Component.SEDIMENT):
            fail_h, progress_h = self.fail_h[component], self.progress_h[component]
            prevent_h = self.prevent_h[component]
            idle = who[(fail_h[who] - progress_h[who] > hour) & (self.repair_h[component][who] == NEVER)]
            was_fail_h, was_progress_h, was_prevent_h = fail_h[idle], progress_h[idle], prevent_h[idle]
            self._schedule(component, idle, hour, self.anode_rng)
            if component is Component.TANK_LEAK:
                sooner = was_fail_h < fail_h[idle]
                back = idle[sooner]
                fail_h[back], progress_h[back] = was_fail_h[sooner], was_progress_h[sooner]
                prevent_h[back] = was_prevent_h[sooner]

    def schedule_failure(
        self, component: Component, who: np.ndarray, hour: int, progression_h: int, variant: int = UPPER
    ) -> None:
        """Make ``component`` of heaters ``who`` fail at ``hour`` after ``progression_h`` hours of build-up
        (scenarios for tests and demos; ``variant`` picks the upper or lower element or sensor). An alert may
        catch it as it would any fault (with an ``AlertDispatch``)."""
        self.fail_h[component][who] = hour
        self.progress_h[component][who] = max(1, progression_h)
        self.repair_h[component][who] = NEVER
        self.prevent_h[component][who] = NEVER
        self.variant[component][who] = variant
        self.flush_h[who] = NEVER  # a flush would draw the sediment's failure again
        self._alert(component, who)

    def postpone_all(self, who: np.ndarray) -> None:
        """No fault of any kind for heaters ``who`` (a healthy control group)."""
        self.flush_h[who] = NEVER
        for component in FAULT_MODES:
            self.fail_h[component][who] = NEVER
            self.repair_h[component][who] = NEVER
            self.prevent_h[component][who] = NEVER

    def _at(self, hour: int) -> datetime:
        return self.start + timedelta(hours=hour)

    def block(self, first_hour: int, hours: int, rng: np.random.Generator) -> tuple[FaultEffects, list[FailureEvent]]:
        """Advance the schedule through ``hours`` hours and return their effects and the failures in them."""
        n = len(self.device_ids)
        shape2 = (n, hours, 2)
        fx = FaultEffects(
            upper_w=np.full((n, hours), ELEMENT_W),
            lower_w=np.full((n, hours), ELEMENT_W),
            lower_efficiency=np.repeat(self.base_lower_efficiency[:, None], hours, axis=1),
            start_below_k=np.full((n, hours), REENGAGE_BELOW_K),
            stop_above_k=np.zeros((n, hours)),
            jitter_sd_k=np.zeros((n, hours)),
            stuck_on=np.zeros((n, hours), bool),
            heating_enabled=np.ones((n, hours), bool),
            eco_reset=np.zeros((n, hours), bool),
            leak_l=np.zeros((n, hours)),
            wet_per_min=np.zeros((n, hours)),
            leak_sensor_wet=np.zeros((n, hours), bool),
            kettling_sd_k=np.zeros((n, hours)),
            sensor_noise_sd_k=np.zeros(shape2),
            sensor_stuck_per_h=np.zeros(shape2),
            sensor_spike_per_min=np.zeros(shape2),
            sensor_rail_c=np.full(shape2, np.nan),
            error_code=np.zeros((n, hours), np.int16),
        )
        events: list[FailureEvent] = []
        hour, end = first_hour, first_hour + hours
        shown = self.field.signature(first_hour, hours, rng) if self.field is not None else None
        while hour < end:  # the schedule only changes at failures and repairs: apply it segment by segment
            fx.eco_reset[self._events_at(hour, rng, events), hour - first_hour] = True
            following = self._next_event_hour(hour, end)
            k = slice(hour - first_hour, following - first_hour)
            severity, failed = self._state(np.arange(hour, following))
            if shown is not None:
                severity = {c: x * shown[c][:, k] for c, x in severity.items()}
            self._apply(k, severity, failed, fx)
            hour = following
        return fx, events

    def events_between(self, first_hour: int, end: int, rng: np.random.Generator) -> list[FailureEvent]:
        """Advance the schedule from ``first_hour`` to ``end`` without the effects: the failures alone (years
        of a large fleet in seconds, e.g. to check a calibration)."""
        events: list[FailureEvent] = []
        hour = first_hour
        while hour < end:
            self._events_at(hour, rng, events)
            hour = self._next_event_hour(hour, end)
        return events

    def _events_at(self, hour: int, rng: np.random.Generator, events: list[FailureEvent]) -> np.ndarray:
        """A new anode fitted, flushes, preventive replacements, repairs, then failures, that happen at ``hour``;
        returns the heaters whose thermostat was repaired (their ECO is reset)."""
        if hour == self.anode_fit_h:
            self._fit_anode(hour)
        self._flush(hour)
        eco_reset = np.zeros(0, np.int64)
        for component in FAULT_MODES:
            # a worn part replaced before it fails: no failure, and its degradation starts again from new
            prevented = np.flatnonzero(self.prevent_h[component] == hour)  # always before its failure
            if prevented.size:
                would_fail = self.fail_h[component][prevented]
                self.preventive += [
                    PreventiveRepair(self.device_ids[i], component, self._at(hour), self._at(int(f)))
                    for i, f in zip(prevented, would_fail, strict=True)
                ]
                self._renew(component, prevented, hour, rng)
            repaired = np.flatnonzero(self.repair_h[component] == hour)
            if repaired.size:
                self._renew(component, repaired, hour, rng)
                if component is Component.THERMOSTAT:
                    eco_reset = repaired
            failing = np.flatnonzero(self.fail_h[component] == hour)
            if failing.size:
                delays = rng.integers(*REPAIR_HOURS, failing.size, endpoint=True)
                self.repair_h[component][failing] = hour + delays
                codes = self._failure_codes(component, failing)
                events += [
                    FailureEvent(self.device_ids[i], component, self._at(hour), self._at(hour + int(d)), int(code))
                    for i, d, code in zip(failing, delays, codes, strict=True)
                ]
                if self.field is not None:
                    self.ages_at_failure += self.field.age_years(Component.TANK_LEAK, failing, hour).tolist()
        return eco_reset

    def _flush(self, hour: int) -> None:
        """The tanks due a flush at ``hour`` are flushed: a working sediment part's build-up falls back and its
        failure is drawn again from there (a failed one waits for its repair); the next flush is dated. Its draws
        come from the owners' stream: a flush takes nothing from the fleet's."""
        flushing = np.flatnonzero(self.flush_h == hour)
        if not flushing.size:
            return
        self.maintenance += [MaintenanceEvent(self.device_ids[i], "flush", self._at(hour)) for i in flushing]
        working = flushing[self.repair_h[Component.SEDIMENT][flushing] == NEVER]
        self.field.flushed(working, hour)
        self._schedule(Component.SEDIMENT, working, hour, self.field.owners)
        self.flush_h[flushing] += self.field.hours_to_flush(flushing)

    def _renew(self, component: Component, who: np.ndarray, hour: int, rng: np.random.Generator) -> None:
        """A technician fitted a new ``component`` in heaters ``who`` at ``hour``."""
        if self.field is not None:
            self._replace(component, who, hour, rng)
            return
        self._schedule(component, who, hour, rng)
        if component is Component.TANK_LEAK:  # a new tank has no sediment
            self._schedule(Component.SEDIMENT, who, hour, rng)

    def _replace(self, component: Component, who: np.ndarray, hour: int, rng: np.random.Generator) -> None:
        """Field hazards: the technician fits a new part; a new tank is a new heater, all its parts new
        (those failed and waiting for their own repair excepted)."""
        self.field.replaced(component, who, hour)
        self._schedule(component, who, hour, rng)
        if component is Component.TANK_LEAK:
            for part in FAULT_MODES:
                if part is not component:
                    working = who[self.repair_h[part][who] == NEVER]
                    self._schedule(part, working, hour, rng)

    def _next_event_hour(self, hour: int, end: int) -> int:
        following = self.anode_fit_h if hour < self.anode_fit_h < end else end
        preventive = self.prevent_h.values() if self.dispatch is not None else ()
        flushes = (self.flush_h,) if self.field is not None else ()
        for schedule in (*self.fail_h.values(), *self.repair_h.values(), *preventive, *flushes):
            upcoming = schedule[(schedule > hour) & (schedule < following)]
            if upcoming.size:
                following = int(upcoming.min())
        return following

    def _state(self, hours: np.ndarray) -> tuple[dict[Component, np.ndarray], dict[Component, np.ndarray]]:
        """Severity (0..1) and failed flag of every component, ``(n, len(hours))``."""
        severity, failed = {}, {}
        for component, mode in FAULT_MODES.items():
            fail_h = self.fail_h[component][:, None]
            failed[component] = (fail_h <= hours) & (hours < self.repair_h[component][:, None])
            remaining = (fail_h - hours) / self.progress_h[component][:, None]
            progress = np.clip(1.0 - remaining, 0.0, 1.0)
            severity[component] = np.where(failed[component], 1.0, progress**mode.shape)
            if component is Component.TANK_LEAK and self.anode is not None:  # the new anode's corrosion curve
                fitted = self.new_anode
                corroding = progress[fitted] ** self.anode.corrosion_shape
                severity[component][fitted] = np.where(failed[component][fitted], 1.0, corroding)
        return severity, failed

    def _failure_codes(self, component: Component, who: np.ndarray) -> np.ndarray:
        variant = self.variant[component][who]
        if component is Component.HEATING_ELEMENT:
            return np.where(variant == UPPER, ErrorCode.UPPER_ELEMENT, ErrorCode.LOWER_ELEMENT)
        if component is Component.SENSOR:
            return np.where(variant == UPPER, ErrorCode.UPPER_TANK_SENSOR, ErrorCode.LOWER_TANK_SENSOR)
        code = {
            Component.THERMOSTAT: ErrorCode.ECO_HIGH_LIMIT,
            Component.SEDIMENT: ErrorCode.DRY_FIRE,
            Component.TANK_LEAK: ErrorCode.LEAK,
        }[component]
        return np.full(who.size, int(code))

    def _apply(self, k: slice, x: dict[Component, np.ndarray], failed: dict[Component, np.ndarray], fx: FaultEffects):
        code = fx.error_code[:, k]

        element = Component.HEATING_ELEMENT
        power = np.where(failed[element], 0.0, ELEMENT_W * (1.0 - (1.0 - ELEMENT_END_POWER) * x[element]))
        upper = (self.variant[element] == UPPER)[:, None]
        fx.upper_w[:, k] = np.where(upper, power, ELEMENT_W)
        fx.lower_w[:, k] = np.where(upper, ELEMENT_W, power)

        sediment = Component.SEDIMENT
        fx.lower_efficiency[:, k] *= 1.0 - (1.0 - SEDIMENT_END_EFFICIENCY) * x[sediment]
        fx.lower_w[:, k] = np.where(failed[sediment], 0.0, fx.lower_w[:, k])
        fx.kettling_sd_k[:, k] = 0.8 * x[sediment]

        thermostat = Component.THERMOSTAT
        overshoot = THERMOSTAT_MAX_OVERSHOOT_K * x[thermostat]
        fx.stop_above_k[:, k] = overshoot
        fx.start_below_k[:, k] = REENGAGE_BELOW_K * (1.0 - 0.85 * x[thermostat]) - overshoot
        fx.jitter_sd_k[:, k] = 1.5 * x[thermostat]
        fx.stuck_on[:, k] = failed[thermostat]

        leak = Component.TANK_LEAK
        seeping = x[leak] > 0
        seep = SEEP_START_L_PER_MIN * (SEEP_END_L_PER_MIN / SEEP_START_L_PER_MIN) ** x[leak]
        fx.leak_l[:, k] = np.where(failed[leak], LEAK_L_PER_MIN, np.where(seeping, seep, 0.0))
        fx.wet_per_min[:, k] = 0.003 * x[leak] ** 2
        fx.leak_sensor_wet[:, k] = failed[leak]

        sensor = Component.SENSOR
        for zone in (UPPER, LOWER):
            mine = (self.variant[sensor] == zone)[:, None]
            xs = np.where(mine, x[sensor], 0.0)
            fx.sensor_noise_sd_k[:, k, zone] = 2.0 * xs**2
            fx.sensor_stuck_per_h[:, k, zone] = 0.25 * xs
            fx.sensor_spike_per_min[:, k, zone] = 0.004 * xs
            fx.sensor_rail_c[:, k, zone] = np.where(mine & failed[sensor], self.sensor_rail_c[:, None], np.nan)
        fx.heating_enabled[:, k] = ~failed[sensor]

        # one code at a time, the most urgent last so it wins
        everyone = np.arange(code.shape[0])
        for component in (sediment, element, sensor, leak):
            codes = np.broadcast_to(self._failure_codes(component, everyone)[:, None], code.shape)
            code[failed[component]] = codes[failed[component]]
