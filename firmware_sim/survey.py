"""A calibration's failure statistics over years of a large fleet: the fault schedule alone, no physics.

What a reliability study of the fleet would find: failures per heater-year, the mix of failed
components and (field calibration) the heater's age at each failure. Thousands of heater-years take
seconds, so tests and docs/telemetry.md check the calibrations against the field figures with it.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from firmware_sim.calibration import Calibration
from firmware_sim.fleet import FleetSimulator
from firmware_sim.hazards import HOURS_PER_YEAR
from shared.messages import Component

SURVEY_START = datetime(2025, 1, 1, tzinfo=UTC)


@dataclass
class FailureSurvey:
    heater_years: float
    counts: dict[Component, int]
    components: np.ndarray  # str, one per failure, in time order
    ages_years: np.ndarray  # the heater's age at each failure (field calibration; empty otherwise)
    hardness: np.ndarray  # relative water hardness of the heater of each failure (field; empty otherwise)
    fleet: FleetSimulator

    @property
    def failures_per_year(self) -> float:
        return sum(self.counts.values()) / self.heater_years

    @property
    def leak_share(self) -> float:
        return self.counts[Component.TANK_LEAK] / sum(self.counts.values())


def survey(calibration: Calibration, heaters: int = 5000, years: float = 10.0, seed: int = 0) -> FailureSurvey:
    """Run the fault schedule of ``heaters`` heaters for ``years`` and count what failed, and at what age."""
    fleet = FleetSimulator(heaters, seed, SURVEY_START, "survey", calibration=calibration)
    events = fleet.faults.events_between(0, round(years * HOURS_PER_YEAR), fleet.rng)
    counts = collections.Counter(e.component for e in events)
    index = {device: i for i, device in enumerate(fleet.device_ids)}
    field = fleet.faults.field
    return FailureSurvey(
        heater_years=heaters * years,
        counts={c: counts.get(c, 0) for c in Component},
        components=np.array([e.component.value for e in events]),
        ages_years=np.array(fleet.faults.ages_at_failure),
        hardness=np.array([field.hardness[index[e.device_id]] for e in events]) if field else np.zeros(0),
        fleet=fleet,
    )
