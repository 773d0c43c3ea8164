"""What technicians find: the failure labels a utility has, beside the simulator's ground truth.

A utility does not see a part fail; it reads the work order of the technician who went out. So a finding is
dated by the visit (the repair, 0.5–3 days after the failure), and reaches the cloud days later (the work order
is closed and synced); some failures are never recorded against their component (the heater was replaced
whole, or the order says "no hot water"), and some parts are found worn at a visit before they would have
failed ("found degraded": replaced then, result ``replaced``). The rates are assumptions, not field figures
(docs/evaluation.md says why each): training and evaluation read them to learn how much label noise a
model's figures survive. A part replaced after an alert (firmware_sim/dispatch.py) is always recorded, as
found degraded: the technician was sent for that part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from firmware_sim.dispatch import REPAIR_HOURS
from firmware_sim.faults import FailureEvent, PreventiveRepair
from shared.messages import Component, OutcomeResult


@dataclass(frozen=True)
class FindingRates:
    """How what technicians record differs from what happened."""

    #: failures recorded against no component (the heater replaced whole, a vague work order)
    missed_share: float = 0.10
    #: failures a visit found before they happened: the worn part was replaced then
    degraded_share: float = 0.15
    #: days before the failure such a visit came (uniform)
    degraded_days_before: tuple[float, float] = (2.0, 30.0)
    #: days from the visit to the cloud receiving the finding (uniform)
    report_delay_days: tuple[float, float] = (0.0, 10.0)

    @property
    def settling(self) -> timedelta:
        """The longest a finding takes from the failure to the cloud: rows whose horizon ends later than this
        before the end of observation cannot be labelled yet, failure or not."""
        return timedelta(hours=REPAIR_HOURS[1]) + timedelta(days=self.report_delay_days[1])


FINDING_RATES = FindingRates()


@dataclass(frozen=True)
class Finding:
    """A technician's record: ``component`` of ``device_id`` found failed (or worn: ``replaced``) at the visit
    ``observed_at``, received by the cloud at ``received_at``; ``failed_at`` is the ground truth behind it (for
    a part replaced after an alert: when it would have failed)."""

    device_id: str
    component: Component
    observed_at: datetime
    received_at: datetime
    result: OutcomeResult
    failed_at: datetime


def technician_findings(
    failures: Sequence[FailureEvent],
    rates: FindingRates = FINDING_RATES,
    seed: int = 0,
    preventive: Sequence[PreventiveRepair] = (),
) -> list[Finding]:
    """The findings ``failures`` and ``preventive`` replacements leave in a utility's records, in the order of
    their visits (the same for the same events and seed)."""
    ordered = sorted(failures, key=lambda f: (f.failed_at, f.device_id, f.component.value))
    rng = np.random.default_rng(seed)
    n = len(ordered)
    fate = rng.random(n)
    before = rng.uniform(*rates.degraded_days_before, n)
    delay = rng.uniform(*rates.report_delay_days, n)
    findings = []
    for failure, draw, days_before, days_late in zip(ordered, fate, before, delay, strict=True):
        if draw < rates.missed_share:
            continue
        if draw < rates.missed_share + rates.degraded_share:
            visit, result = failure.failed_at - timedelta(days=float(days_before)), OutcomeResult.REPLACED
        else:
            visit, result = failure.repaired_at, OutcomeResult.FAILED
        received = visit + timedelta(days=float(days_late))
        findings.append(Finding(failure.device_id, failure.component, visit, received, result, failure.failed_at))
    late = rng.uniform(*rates.report_delay_days, len(preventive))  # drawn after: the failures' findings stay
    for repair, days_late in zip(preventive, late, strict=True):
        received = repair.replaced_at + timedelta(days=float(days_late))
        visit, worn = repair.replaced_at, OutcomeResult.REPLACED
        findings.append(Finding(repair.device_id, repair.component, visit, received, worn, repair.would_fail_at))
    return sorted(findings, key=lambda f: (f.observed_at, f.device_id, f.component.value))
