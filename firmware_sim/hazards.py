"""Field hazards: when a real heater's components fail, from its age, its water, its use and its luck.

Every component of every heater has a Weibull wear-out hazard in the component's own age (a new tank
brings new parts), scaled per heater by water hardness and hot-water use (proportional hazards on the
cumulative hazard: ``H(t) = m · (t / scale)^shape``, ``m = hardness^a · usage^b``; a tank's own
quality and its owner's maintenance stretch its life on top), plus
a small share of new parts with a defect that fail early (the "infant mortality" of a bathtub curve).
Hard water drives both element burn-out and sediment (a confounder). The fleet's tank ages are those
of a steady state of replacements (a renewal process: length-biased life, uniform age within it), so
they spread from new to about 30 years.

How a failure shows varies: each fault episode gets its own signature strength (0–1, scales the
severity its signature builds from), a share of failures come with no warning at all (a one-hour
build-up: an element burning out, a sensor going open circuit, a tank bursting), and a share are
intermittent (the signature comes and goes: a loose connector, a weep that seals with scale).
Maintenance changes the future: some owners flush the tank every one to three years, a dated event that
takes the sediment's build-up back to a share of what it was (the sediment part's age, in its Weibull
hazard), so a flushed tank's sediment rarely gets far; and some have the anode replaced (the tank lasts
half as long again: a habit of the owner applied to the tank's life, not yet a dated event). Both are the
owner's, so they hold for the heater's next tank too.

The figures and their sources are in docs/telemetry.md; firmware_sim.calibration checks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shared.messages import Component

HOURS_PER_YEAR = 365.25 * 24
#: hard-water regions by US time zone (UTC offset): median hardness, mg/L as CaCO3 (USGS map, see docs)
REGION_HARDNESS_MG_L = {-5: 100.0, -6: 180.0, -7: 200.0, -8: 110.0}
REGION_HARDNESS_SIGMA = 0.5
#: hardness at which the hazards below hold unscaled: the USGS "moderately hard" / "hard" boundary
REFERENCE_HARDNESS_MG_L = 120.0
#: a tank's own spread of life (build quality, anode size, water chemistry beyond hardness)
TANK_QUALITY_SIGMA = 0.22
#: hours an intermittent fault's signature stays on, and off, on average
INTERMITTENT_ON_H = 12.0
INTERMITTENT_OFF_H = 36.0


@dataclass(frozen=True)
class Hazard:
    """How one component fails in the field."""

    shape: float  # Weibull shape in the component's age: 1 random, > 1 wear-out
    scale_years: float  # characteristic life at reference hardness and usage
    hardness_power: float
    usage_power: float
    early_share: float  # share of new parts with a defect
    early_mean_years: float  # a defective part's mean life
    progression_days: tuple[float, float]  # build-up of a failure that warns
    sudden_share: float  # failures with no warning
    intermittent_share: float  # failures whose signature comes and goes
    #: Beta parameters of the signature strength of one fault episode
    strength: tuple[float, float] = (2.0, 1.5)


FIELD_HAZARDS = {
    Component.HEATING_ELEMENT: Hazard(1.6, 44.0, 1.0, 0.5, 0.006, 0.5, (5, 40), 0.5, 0.15),
    Component.THERMOSTAT: Hazard(1.8, 60.0, 0.0, 0.5, 0.003, 0.5, (14, 60), 0.2, 0.3),
    Component.SEDIMENT: Hazard(2.0, 40.0, 1.5, 0.3, 0.0, 1.0, (30, 180), 0.0, 0.2),
    Component.TANK_LEAK: Hazard(3.0, 13.2, 0.5, 0.2, 0.01, 1.0, (7, 60), 0.3, 0.3),
    Component.SENSOR: Hazard(1.2, 100.0, 0.0, 0.0, 0.004, 0.3, (7, 30), 0.5, 0.3),
}


@dataclass(frozen=True)
class Maintenance:
    """What some owners do, and what it does to the hazards."""

    flush_share: float = 0.15  # owners who flush the tank
    flush_every_years: tuple[float, float] = (1.0, 3.0)  # between two flushes (uniform)
    #: the share of the sediment's build-up (its part's age) a flush leaves: hardened scale stays
    flush_residual: float = 0.3
    anode_share: float = 0.08  # have the anode replaced once it is spent
    anode_life_factor: float = 1.5  # on the tank's characteristic life


MAINTENANCE = Maintenance()


class FieldHazards:
    """Per-heater covariates, part ages and fault-episode traits of ``n`` heaters under the field hazards."""

    def __init__(self, utc_offset_h: np.ndarray, usage: np.ndarray, rng: np.random.Generator):
        n = utc_offset_h.size
        median = np.array([REGION_HARDNESS_MG_L[int(o)] for o in utc_offset_h])
        self.hardness_mg_l = median * rng.lognormal(0.0, REGION_HARDNESS_SIGMA, n)
        self.hardness = self.hardness_mg_l / REFERENCE_HARDNESS_MG_L
        self.usage = usage
        self.tank_quality = rng.lognormal(0.0, TANK_QUALITY_SIGMA, n)
        self.flushes = rng.random(n) < MAINTENANCE.flush_share
        self.new_anodes = rng.random(n) < MAINTENANCE.anode_share
        #: what owners do, and when: a stream of its own (spawned: the draws below stay as they were)
        self.owners = rng.spawn(1)[0]
        #: hour (from the simulation start; negative: before it) each component was new
        self.installed_h = {c: np.zeros(n) for c in FIELD_HAZARDS}
        self.strength = {c: np.ones(n) for c in FIELD_HAZARDS}
        self.intermittent = {c: np.zeros(n, bool) for c in FIELD_HAZARDS}
        self.showing = {c: np.ones(n, bool) for c in FIELD_HAZARDS}
        # tank ages: the steady state of replacements (length-biased life, the age a uniform share of it)
        shape = FIELD_HAZARDS[Component.TANK_LEAK].shape
        biased_life_y = self._scale_years(Component.TANK_LEAK, np.arange(n)) * rng.gamma(1.0 + 1.0 / shape, 1.0, n) ** (
            1.0 / shape
        )
        elapsed = rng.random(n)
        self.initial_tank_remaining_h = biased_life_y * (1.0 - elapsed) * HOURS_PER_YEAR
        for component in FIELD_HAZARDS:  # original parts: as old as the tank
            self.installed_h[component] = -biased_life_y * elapsed * HOURS_PER_YEAR

    def _scale_years(self, component: Component, who: np.ndarray) -> np.ndarray:
        """Characteristic life of ``component`` in heaters ``who``: the multiplier m turned into a scale."""
        hazard = FIELD_HAZARDS[component]
        m = self.hardness[who] ** hazard.hardness_power * self.usage[who] ** hazard.usage_power
        scale = hazard.scale_years * m ** (-1.0 / hazard.shape)
        if component is Component.TANK_LEAK:
            scale *= self.tank_quality[who] * np.where(self.new_anodes[who], MAINTENANCE.anode_life_factor, 1.0)
        return scale

    def age_years(self, component: Component, who: np.ndarray, hour: int) -> np.ndarray:
        return (hour - self.installed_h[component][who]) / HOURS_PER_YEAR

    def hours_to_flush(self, who: np.ndarray, first: bool = False) -> np.ndarray:
        """Hours until heaters ``who`` are flushed next (``first``: at the start, somewhere in their cycle)."""
        interval_h = self.owners.uniform(*MAINTENANCE.flush_every_years, who.size) * HOURS_PER_YEAR
        return np.ceil(interval_h * (self.owners.random(who.size) if first else 1.0)).astype(np.int64)

    def flushed(self, who: np.ndarray, hour: int) -> None:
        """Heaters ``who`` were flushed at ``hour``: their sediment is as old as the build-up a flush leaves."""
        installed = self.installed_h[Component.SEDIMENT]
        installed[who] = hour - MAINTENANCE.flush_residual * (hour - installed[who])

    def replaced(self, component: Component, who: np.ndarray, hour: int) -> None:
        """``component`` of heaters ``who`` is new from ``hour`` (a tank: the whole heater is new)."""
        for part in FIELD_HAZARDS if component is Component.TANK_LEAK else (component,):
            self.installed_h[part][who] = hour

    def draw(
        self,
        component: Component,
        who: np.ndarray,
        from_hour: int,
        rng: np.random.Generator,
        waiting_h: np.ndarray | None = None,
        factor: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Hours from ``from_hour`` until ``component`` of heaters ``who`` fails, and the hours of warning
        before (1: none); draws the next episode's signature strength and intermittency too. ``factor``
        multiplies the hazard (a world change's anode that feeds sediment)."""
        hazard = FIELD_HAZARDS[component]
        age_y = self.age_years(component, who, from_hour)
        if waiting_h is None:
            scale = self._scale_years(component, who)
            if factor is not None:
                scale = scale * factor ** (-1.0 / hazard.shape)
            exposure = rng.exponential(1.0, who.size)
            fail_age_y = scale * ((age_y / scale) ** hazard.shape + exposure) ** (1.0 / hazard.shape)
            waiting_y = fail_age_y - age_y
            # a defect shows early: certain in a share of new parts, less likely the longer a part has lasted
            defect_odds = hazard.early_share * np.exp(-age_y / hazard.early_mean_years)
            defective = rng.random(who.size) < defect_odds
            early_y = rng.exponential(hazard.early_mean_years, who.size)
            waiting_y = np.where(defective, np.minimum(waiting_y, early_y), waiting_y)
            waiting_h = waiting_y * HOURS_PER_YEAR
        low, high = hazard.progression_days
        progress_h = np.round(rng.uniform(low, high, who.size) * 24).astype(np.int64)
        progress_h[rng.random(who.size) < hazard.sudden_share] = 1
        self.strength[component][who] = rng.beta(*hazard.strength, who.size)
        self.intermittent[component][who] = rng.random(who.size) < hazard.intermittent_share
        self.showing[component][who] = True
        return waiting_h, progress_h

    def signature(self, first_hour: int, hours: int, rng: np.random.Generator) -> dict[Component, np.ndarray]:
        """How much of each component's severity shows in each hour, ``(n, hours)``: its strength, and
        zero while an intermittent fault hides (a two-state chain, hour by hour)."""
        out = {}
        for component, strength in self.strength.items():
            showing = self.showing[component]
            shown = np.empty((strength.size, hours))
            flip = rng.random((strength.size, hours))
            for h in range(hours):
                chance = np.where(showing, 1.0 / INTERMITTENT_ON_H, 1.0 / INTERMITTENT_OFF_H)
                showing = np.where(self.intermittent[component] & (flip[:, h] < chance), ~showing, showing)
                shown[:, h] = np.where(showing, strength, 0.0)
            self.showing[component] = showing
            out[component] = shown
        return out
