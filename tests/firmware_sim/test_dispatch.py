"""Preventive replacement after an alert: the worn part is replaced, the failure it foretold never happens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from click.testing import CliRunner

from firmware_sim.calibration import ACCELERATED, FIELD
from firmware_sim.dispatch import AlertDispatch
from firmware_sim.faults import LOWER, Faults
from firmware_sim.fleet import FleetSimulator
from firmware_sim.hazards import HOURS_PER_YEAR
from firmware_sim.history import generate_history, load_history
from firmware_sim.parameters import ELEMENT_W
from iotsphere.cli import main
from shared.messages import Component

START = datetime(2026, 1, 1, tzinfo=UTC)
ELEMENT = Component.HEATING_ELEMENT


def _faults(share: float, alert_progress: tuple[float, float] = (0.5, 0.5)) -> Faults:
    rng = np.random.default_rng(1)
    dispatch = AlertDispatch(share, alert_progress=alert_progress)
    faults = Faults(["h0", "h1"], START, rng, dispatch=dispatch, dispatch_rng=np.random.default_rng(2))
    faults.postpone_all(np.arange(2))
    return faults


def test_an_alerted_element_is_replaced_before_it_fails_and_its_wear_starts_again():
    # both heaters' lower elements wear for 400 h towards a failure at hour 500; with alerts on, each fault is
    # caught half-way (hour 300) and the technician comes 12-72 h later; without them, both fail
    caught, missed = _faults(1.0), _faults(0.0)
    for faults in (caught, missed):
        faults.schedule_failure(ELEMENT, np.arange(2), 500, 400, LOWER)
    rng = np.random.default_rng(3)
    caught_effects, caught_events = caught.block(0, 540, rng)
    missed_effects, missed_events = missed.block(0, 540, np.random.default_rng(3))

    assert [e.device_id for e in missed_events] == ["h0", "h1"]  # without the alert both fail at hour 500
    assert caught_events == []  # with it, nothing fails
    repairs = sorted(caught.preventive, key=lambda r: r.device_id)
    assert [(r.device_id, r.component) for r in repairs] == [("h0", ELEMENT), ("h1", ELEMENT)]
    for repair in repairs:
        visit_h = (repair.replaced_at - START) / timedelta(hours=1)
        assert 312 <= visit_h <= 372
        assert repair.would_fail_at == START + timedelta(hours=500)
        # worn before the visit (less power), as new from it on: no failure scheduled in the years to come
        i = int(repair.device_id[1:])
        assert caught_effects.lower_w[i, int(visit_h) - 1] < 0.9 * ELEMENT_W
        assert (caught_effects.lower_w[i, int(visit_h) :] == ELEMENT_W).all()
        assert caught.fail_h[ELEMENT][i] > 540  # the new part's failure is drawn afresh from the visit
    assert (missed_effects.lower_w[:, 500:512] == 0).all()  # failed, waiting for the repair (12-72 h)
    assert missed.preventive == []


def test_an_alert_that_comes_too_late_or_a_sudden_failure_replaces_nothing():
    late = _faults(1.0, alert_progress=(1.0, 1.0))  # the alert at the failure: the technician is too late
    late.schedule_failure(ELEMENT, np.arange(2), 100, 50, LOWER)
    sudden = _faults(1.0)
    sudden.schedule_failure(ELEMENT, np.arange(2), 100, 1, LOWER)  # no build-up to alert on
    for faults in (late, sudden):
        _, events = faults.block(0, 120, np.random.default_rng(4))
        assert len(events) == 2 and faults.preventive == []


def test_alerts_on_a_field_fleet_hide_the_share_of_warning_failures_they_catch_and_renew_the_parts():
    years, heaters = 10.0, 2000
    hours = round(years * HOURS_PER_YEAR)
    watched = FleetSimulator(heaters, 5, START, "w", calibration=FIELD, dispatch=AlertDispatch(0.5))
    unwatched = FleetSimulator(heaters, 5, START, "w", calibration=FIELD)
    failures = watched.faults.events_between(0, hours, watched.rng)
    baseline = unwatched.faults.events_between(0, hours, unwatched.rng)
    repairs = watched.faults.preventive
    # half the faults that warn are caught in time, so failures fall by about a third (some come without warning)
    assert 0.2 < len(repairs) / (len(repairs) + len(failures)) < 0.5
    assert len(failures) < 0.8 * len(baseline)
    assert all(r.replaced_at < r.would_fail_at for r in repairs)
    # the failure foretold never happens: no failure of that part within the hour it was due
    happened = {(f.device_id, f.component, f.failed_at) for f in failures}
    assert not any((r.device_id, r.component, r.would_fail_at) in happened for r in repairs)
    # a replaced part is new: its age starts at the visit (unless it was replaced again since)
    field, index = watched.faults.field, {d: i for i, d in enumerate(watched.device_ids)}
    last = {(r.device_id, r.component): r for r in repairs}
    renewed = [
        field.installed_h[c][index[d]] >= (r.replaced_at - START) / timedelta(hours=1) for (d, c), r in last.items()
    ]
    assert all(renewed)


def test_a_field_history_keeps_each_rows_heater_age(tmp_path):
    history = generate_history(60, 40, seed=3, workers=1, calibration=FIELD)
    path = tmp_path / "field.npz"
    history.save(path)
    loaded = load_history(path)
    assert np.array_equal(loaded.heater_age_years, history.heater_age_years)
    # a heater's age grows a quarter of a day a row (one row per 6 h) and falls back to 0 with a new tank
    ages = loaded.heater_age_years.reshape(-1, 60)
    assert np.isfinite(ages).all() and (ages >= 0).all() and ages.max() > 10
    steps = np.diff(ages, axis=0)
    new_tank = steps < 0
    assert np.allclose(steps[~new_tank], 0.25 / 365.25, atol=1e-4)
    tank_failures = {f.device_id for f in history.failures if f.component is Component.TANK_LEAK}
    assert {history.device_ids[i] for i in np.flatnonzero(new_tank.any(axis=0))} == tank_failures
    # the accelerated calibration keeps no ages, and a fleet nobody watches replaces nothing early
    fast = generate_history(10, 2, seed=3, workers=1, calibration=ACCELERATED)
    assert np.isnan(fast.heater_age_years).all() and fast.preventive == [] and fast.alert_share == 0.0


def test_the_alert_share_must_be_a_share():
    with pytest.raises(ValueError, match="between 0 and 1"):
        AlertDispatch(1.5)


def test_sim_history_takes_the_alert_share_and_keeps_the_parts_it_replaced(tmp_path):
    out = tmp_path / "watched.npz"
    args = ["sim", "history", "--heaters", "200", "--days", "60", "--seed", "3", "--window-every-hours", "24"]
    result = CliRunner().invoke(main, [*args, "--alert-share", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    history = load_history(out)
    replaced = len(history.preventive)
    assert replaced > 0 and f"replaced after an alert, before failing: {replaced} worn parts" in result.stdout
    assert history.alert_share == 1.0
    assert all(p.replaced_at < p.would_fail_at for p in history.preventive)
    refused = CliRunner().invoke(main, [*args, "--alert-share", "2", "--out", str(out)])
    assert refused.exit_code == 2 and "--alert-share" in refused.output
