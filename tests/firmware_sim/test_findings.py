"""Technician findings: what a utility records of the simulator's failures, at the configured rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from firmware_sim.faults import FailureEvent
from firmware_sim.findings import FINDING_RATES, technician_findings
from shared.messages import Component, OutcomeResult

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _failures(n: int) -> list[FailureEvent]:
    components = list(Component)
    return [
        FailureEvent(f"h{i:05d}", components[i % 5], T0 + timedelta(hours=7 * i), T0 + timedelta(hours=7 * i + 30), 0)
        for i in range(n)
    ]


def test_findings_miss_some_failures_find_some_degraded_and_arrive_late_at_the_configured_rates():
    failures = _failures(20_000)
    findings = technician_findings(failures)
    truth = {(f.device_id, f.failed_at): f for f in failures}
    degraded = [f for f in findings if f.result is OutcomeResult.REPLACED]
    found_failed = [f for f in findings if f.result is OutcomeResult.FAILED]
    # 20,000 draws: a share is within ±0.008 of its rate with ~99.9 % probability
    assert 1 - len(findings) / len(failures) == pytest.approx(FINDING_RATES.missed_share, abs=0.008)
    assert len(degraded) / len(failures) == pytest.approx(FINDING_RATES.degraded_share, abs=0.008)
    low, high = FINDING_RATES.degraded_days_before
    before = np.array([(f.failed_at - f.observed_at) / timedelta(days=1) for f in degraded])
    assert before.min() >= low and before.max() <= high and np.median(before) == pytest.approx((low + high) / 2, abs=1)
    # a failure found failed is dated by the repair visit, not by when it failed
    assert all(f.observed_at == truth[(f.device_id, f.failed_at)].repaired_at for f in found_failed)
    delay = np.array([(f.received_at - f.observed_at) / timedelta(days=1) for f in findings])
    assert delay.min() >= FINDING_RATES.report_delay_days[0] and delay.max() <= FINDING_RATES.report_delay_days[1]
    assert delay.mean() == pytest.approx(sum(FINDING_RATES.report_delay_days) / 2, abs=0.2)
    assert all(f.received_at - f.failed_at <= FINDING_RATES.settling for f in found_failed)
    assert all(f.component == truth[(f.device_id, f.failed_at)].component for f in findings)


def test_the_same_failures_leave_the_same_findings_whatever_their_order():
    failures = _failures(500)
    assert technician_findings(failures) == technician_findings(list(reversed(failures)))
    assert technician_findings(failures) != technician_findings(failures, seed=1)
