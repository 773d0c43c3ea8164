"""Maintenance as dated events: a flush on a date takes the sediment's build-up back, and the history says when."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np

from firmware_sim.calibration import FIELD
from firmware_sim.fleet import FleetSimulator
from firmware_sim.hazards import HOURS_PER_YEAR, MAINTENANCE
from firmware_sim.history import generate_history, load_history
from shared.messages import Component

START = datetime(2026, 1, 1, tzinfo=UTC)
SEDIMENT = Component.SEDIMENT


def test_owners_who_flush_do_it_on_dates_one_to_three_years_apart_and_their_sediment_fails_less():
    years = 10.0
    fleet = FleetSimulator(5000, 2, START, "m", calibration=FIELD)
    field = fleet.faults.field
    failures = fleet.faults.events_between(0, round(years * HOURS_PER_YEAR), fleet.rng)
    flushes = defaultdict(list)
    for event in fleet.faults.maintenance:
        assert event.kind == "flush"
        flushes[event.device_id].append(event.at)
    flushers = {fleet.device_ids[i] for i in np.flatnonzero(field.flushes)}
    assert set(flushes) == flushers  # every owner who flushes, and nobody else
    gaps = np.concatenate([np.diff(dates) / timedelta(days=365.25) for dates in flushes.values()])
    low, high = MAINTENANCE.flush_every_years
    assert gaps.min() >= low - 1e-3 and gaps.max() <= high + 1e-3
    assert abs(np.mean(gaps) - (low + high) / 2) < 0.1
    # the sediment of a flushed tank rarely builds up to a failure: per heater-year, far fewer than the others'
    failed = [f.device_id for f in failures if f.component is SEDIMENT]
    flushed_rate = sum(d in flushers for d in failed) / (len(flushers) * years)
    other_rate = sum(d not in flushers for d in failed) / ((fleet.n - len(flushers)) * years)
    assert flushed_rate < 0.5 * other_rate and other_rate > 0


def test_a_flush_takes_the_sediment_back_to_a_share_of_its_build_up():
    fleet = FleetSimulator(2000, 4, START, "m", calibration=FIELD)
    faults, field = fleet.faults, fleet.faults.field
    due = int(faults.flush_h[field.flushes].min())
    faults.events_between(0, due, fleet.rng)  # up to the hour of the first flush
    flushed = np.flatnonzero(faults.flush_h == due)
    working = flushed[faults.repair_h[SEDIMENT][flushed] > due]
    assert working.size
    age_before = field.age_years(SEDIMENT, working, due)
    faults.events_between(due, due + 1, fleet.rng)
    assert np.allclose(field.age_years(SEDIMENT, working, due), MAINTENANCE.flush_residual * age_before)
    assert (faults.flush_h[flushed] > due).all()  # the next one is dated
    assert faults.fail_h[SEDIMENT][working].min() > due  # its failure drawn again from the flush


def test_a_history_keeps_the_dated_flushes(tmp_path):
    history = generate_history(400, 60, seed=3, workers=1, calibration=FIELD, window_every_hours=24)
    assert history.maintenance and {m.kind for m in history.maintenance} == {"flush"}
    path = tmp_path / "field.npz"
    history.save(path)
    assert load_history(path).maintenance == history.maintenance
