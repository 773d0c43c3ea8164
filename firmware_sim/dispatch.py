"""Preventive replacement after an alert: a utility that acts on alerts hides the failures they foresaw.

A fleet watched by a failure model (or by anything that alerts) is not the fleet of the field study: a
technician dispatched on an alert finds the worn part and replaces it, and the failure that would have
followed never happens. The history then holds a ``PreventiveRepair`` (the part found degraded and
replaced) where the failure would have been, and the part's hazard starts again from new. Off unless asked
for (``iotsphere sim history --alert-share``): the field calibration's mix and ages are those of a fleet
nobody watched, and they hold only without it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: an hour no fault reaches (a failure time that never comes)
NEVER = np.iinfo(np.int64).max // 4
#: hours from a failure (or an alert) to the technician's visit (uniform)
REPAIR_HOURS = (12, 72)


@dataclass(frozen=True)
class AlertDispatch:
    """Which fault episodes an alert catches in time, and when the technician comes."""

    #: share of the faults that warn (a build-up of more than an hour) that an alert catches
    share: float
    #: how far through its build-up a fault is when the alert comes (uniform)
    alert_progress: tuple[float, float] = (0.3, 0.9)
    #: hours from the alert to the visit (uniform): the same as from a failure to its repair
    visit_hours: tuple[int, int] = REPAIR_HOURS

    def __post_init__(self) -> None:
        if not 0.0 <= self.share <= 1.0:
            raise ValueError(f"the alert share must be between 0 and 1, got {self.share}")

    def visits(self, fail_h: np.ndarray, progress_h: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The hour of the preventive visit of each new fault episode, or ``NEVER`` where no alert catches it
        or the part fails before the technician arrives (a sudden failure never is caught)."""
        n = fail_h.size
        caught = (rng.random(n) < self.share) & (progress_h > 1)
        alert_h = fail_h - progress_h + np.round(rng.uniform(*self.alert_progress, n) * progress_h).astype(np.int64)
        visit_h = alert_h + rng.integers(*self.visit_hours, n, endpoint=True)
        return np.where(caught & (visit_h < fail_h), visit_h, NEVER)
