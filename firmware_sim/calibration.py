"""The simulator's two calibrations: the fleet as the field sees it, and the fast one the demo trains on.

- ``field``: failure hazards by age, water hardness and use (firmware_sim/hazards.py), calibrated to
  the insurance study of 700 water-heater failures (69 % tank leaks, mean age at failure 10.7
  years), with failures that warn weakly, intermittently or not at all; healthy heaters carry what
  real sites and links add (firmware_sim/site_noise.py). The default for evaluating a model.
- ``accelerated``: the simulator as it was first built: faults about three times as frequent (the
  four non-leak components about eight times), each with a clear, fixed signature, and clean
  telemetry; so a 1,000-heater, 180-day history holds a few dozen failures of each kind. The demo and
  the test suite run on it, and every figure from it must be read with its acceleration factor.

docs/telemetry.md gives every figure with its source.
"""

from __future__ import annotations

from dataclasses import dataclass

#: failures per heater-year of a field fleet (all components): measured from the field hazards over
#: 10 simulated years of 5,000 heaters (firmware_sim.survey), ~8.8 % tank leaks a year (one per tank
#: life of ~11 years in a steady state of replacements) plus the other components' 31 %
FIELD_FAILURES_PER_YEAR = 0.127
#: the accelerated fleet: 0.08 + 0.07 + 0.07 · E[hardness] (1.08) + 0.07 for the element,
#: thermostat, sediment and sensor, plus tank leaks once per 10.7-year tank life
ACCELERATED_FAILURES_PER_YEAR = 0.08 + 0.07 + 0.07 * 1.083 + 0.07 + 1.0 / 10.7


@dataclass(frozen=True)
class Calibration:
    name: str
    failures_per_year: float  # per heater, all components
    #: field hazards, signatures that vary, and healthy heaters with real sites' noise
    realistic: bool

    @property
    def acceleration(self) -> float:
        """How many times more often this fleet fails than a field fleet."""
        return self.failures_per_year / FIELD_FAILURES_PER_YEAR

    def describe(self) -> str:
        """One line to print beside any figure computed from this calibration's fleet."""
        if not self.realistic:
            return (
                f"calibration {self.name}: failures ×{self.acceleration:.1f} the field rate "
                f"({self.failures_per_year:.2f} vs {FIELD_FAILURES_PER_YEAR:.2f} per heater-year), "
                "clear signatures, clean telemetry"
            )
        return (
            f"calibration {self.name}: {self.failures_per_year:.3f} failures per heater-year, "
            "mix and ages of the field study, noisy telemetry"
        )


FIELD = Calibration("field", FIELD_FAILURES_PER_YEAR, realistic=True)
ACCELERATED = Calibration("accelerated", ACCELERATED_FAILURES_PER_YEAR, realistic=False)
CALIBRATIONS = {c.name: c for c in (FIELD, ACCELERATED)}
#: what the simulator's API and CLI use when not told: the demo, tests and benchmark depend on it
DEFAULT_CALIBRATION = ACCELERATED


def calibration(name: str) -> Calibration:
    try:
        return CALIBRATIONS[name]
    except KeyError:
        raise ValueError(f"unknown calibration {name!r}: one of {', '.join(CALIBRATIONS)}") from None
