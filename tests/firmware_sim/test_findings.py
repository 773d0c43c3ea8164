"""Technician findings: what a utility records of the simulator's failures, at the configured rates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from firmware_sim.faults import FailureEvent, PreventiveRepair
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


def test_a_part_replaced_after_an_alert_is_always_recorded_as_found_worn_at_the_visit():
    failures = _failures(500)
    repairs = [
        PreventiveRepair(f"p{i:05d}", Component.SEDIMENT, T0 + timedelta(hours=5 * i), T0 + timedelta(days=40 + i))
        for i in range(300)
    ]
    findings = technician_findings(failures, preventive=repairs)
    worn = [f for f in findings if f.device_id.startswith("p")]
    assert len(worn) == len(repairs)  # the technician was sent for that part: never missed
    assert all(f.result is OutcomeResult.REPLACED for f in worn)
    assert [(f.observed_at, f.failed_at) for f in worn] == [(r.replaced_at, r.would_fail_at) for r in repairs]
    delay = np.array([(f.received_at - f.observed_at) / timedelta(days=1) for f in worn])
    assert delay.min() >= FINDING_RATES.report_delay_days[0] and delay.max() <= FINDING_RATES.report_delay_days[1]
    # the failures' findings stay what they were without the replacements, and all come in order of the visit
    assert [f for f in findings if not f.device_id.startswith("p")] == technician_findings(failures)
    assert [f.observed_at for f in findings] == sorted(f.observed_at for f in findings)
