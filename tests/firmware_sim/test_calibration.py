"""The field calibration reproduces the field study, and the accelerated one says how much faster it fails.

The failure statistics come from the fault schedule alone (firmware_sim.survey: 50,000 heater-years
in a few seconds); the healthy-heater noise from short field histories beside accelerated ones of
the same seed. Tolerances are about three standard errors of the surveyed figure.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from click.testing import CliRunner

from firmware_sim.calibration import (
    ACCELERATED,
    ACCELERATED_FAILURES_PER_YEAR,
    DEFAULT_CALIBRATION,
    FIELD,
    FIELD_FAILURES_PER_YEAR,
    calibration,
)
from firmware_sim.faults import Faults
from firmware_sim.fleet import FleetSimulator
from firmware_sim.hazards import FIELD_HAZARDS
from firmware_sim.history import History, generate_history, load_history
from firmware_sim.live import Fleet
from firmware_sim.survey import survey
from iotsphere.cli import main
from shared.features import FEATURE_NAMES
from shared.messages import Component

SUMMER = datetime(2025, 6, 20, tzinfo=UTC)
#: the insurance study of 700 failures (docs/telemetry.md)
FIELD_LEAK_SHARE = 0.69
FIELD_MEAN_AGE_YEARS = 10.7


@pytest.fixture(scope="module")
def field_survey():
    return survey(FIELD, heaters=5000, years=10.0, seed=0)


def test_field_failure_mix_rate_and_ages_match_the_field_study(field_survey):
    s = field_survey
    assert sum(s.counts.values()) > 5000
    assert s.leak_share == pytest.approx(FIELD_LEAK_SHARE, abs=0.03)
    assert s.failures_per_year == pytest.approx(FIELD_FAILURES_PER_YEAR, rel=0.06)
    assert s.ages_years.mean() == pytest.approx(FIELD_MEAN_AGE_YEARS, abs=0.6)
    assert s.ages_years.min() < 1.0 and np.percentile(s.ages_years, 99) > 25.0, "ages at failure spread 1-30 years"
    leak_ages = s.ages_years[s.components == Component.TANK_LEAK.value]
    assert (leak_ages <= 20).mean() > 0.9, "the study: 95 % of leaking tanks were up to 20 years old"
    assert 0.55 < (s.ages_years <= 12).mean() < 0.8, "the study: about three quarters failed by 12 years"
    for component in Component:
        assert s.counts[component] > 100, component


def test_the_fleet_is_of_every_age_and_some_parts_fail_young(field_survey):
    fleet = FleetSimulator(5000, 0, SUMMER, "ages", calibration=FIELD)
    ages = fleet.faults.field.age_years(Component.TANK_LEAK, np.arange(5000), 0)
    assert np.percentile(ages, 5) < 1.0 and np.percentile(ages, 99) > 20.0 and ages.max() < 60
    assert 5.0 < np.median(ages) < 9.0
    young = (field_survey.ages_years < 1.0).mean()
    assert 0.005 < young < 0.08, "early-life failures: a few per cent, not none and not many"


def test_hard_water_drives_element_and_sediment_failures_but_not_sensor_ones(field_survey):
    hardness = field_survey.fleet.faults.field.hardness
    hard, soft = hardness > 1.5, hardness < 0.8
    assert hard.sum() > 500 and soft.sum() > 500

    def rate(component: Component, group: np.ndarray, threshold) -> float:
        mine = field_survey.components == component.value
        return (threshold(field_survey.hardness[mine])).sum() / group.sum()

    for component, low, high in (
        (Component.HEATING_ELEMENT, 1.5, np.inf),
        (Component.SEDIMENT, 2.0, np.inf),
        (Component.SENSOR, 0.6, 1.6),
    ):
        ratio = rate(component, hard, lambda h: h > 1.5) / rate(component, soft, lambda h: h < 0.8)
        assert low < ratio < high, (component, ratio)


def test_accelerated_fails_its_stated_multiple_of_the_field_rate():
    s = survey(ACCELERATED, heaters=2000, years=5.0, seed=1)
    assert s.failures_per_year == pytest.approx(ACCELERATED_FAILURES_PER_YEAR, rel=0.05)
    assert ACCELERATED.acceleration == pytest.approx(3.1, abs=0.1)
    assert s.leak_share < 0.3, "accelerated: leaks are a quarter of failures, not the field's 69 %"
    assert s.ages_years.size == 0
    assert "×3.1 the field rate" in ACCELERATED.describe()


def test_some_field_failures_come_without_warning_and_signatures_vary():
    field = Faults([f"h{i}" for i in range(4000)], SUMMER, np.random.default_rng(2))
    real = FleetSimulator(4000, 2, SUMMER, "w", calibration=FIELD).faults
    for component in (Component.HEATING_ELEMENT, Component.SENSOR, Component.TANK_LEAK):
        sudden = (real.progress_h[component] == 1).mean()
        assert sudden == pytest.approx(FIELD_HAZARDS[component].sudden_share, abs=0.04), component
        assert field.progress_h[component].min() >= 7 * 24, "accelerated: every fault warns for a week or more"
    strength = real.field.strength[Component.HEATING_ELEMENT]
    assert strength.std() > 0.15 and strength.min() < 0.2 and strength.max() > 0.9


def test_an_intermittent_fault_shows_and_hides_while_a_steady_one_always_shows():
    faults = FleetSimulator(400, 3, SUMMER, "i", calibration=FIELD).faults
    shown = faults.field.signature(0, 24 * 20, np.random.default_rng(0))[Component.SENSOR]
    intermittent = faults.field.intermittent[Component.SENSOR]
    assert intermittent.sum() > 50
    hiding = (shown[intermittent] == 0).mean(axis=1)
    assert 0.4 < np.median(hiding) < 0.95
    np.testing.assert_array_equal(
        shown[~intermittent], np.repeat(faults.field.strength[Component.SENSOR][~intermittent, None], 480, axis=1)
    )


@pytest.fixture(scope="module")
def histories() -> dict[str, History]:
    return {
        c.name: generate_history(120, 6, seed=9, start=SUMMER, window_every_hours=24, workers=1, calibration=c)
        for c in (FIELD, ACCELERATED)
    }


def healthy_rows(history: History) -> np.ndarray:
    failed = {f.device_id for f in history.failures}
    return ~np.isin(history.device_ids[history.row_device], list(failed))


def column(history: History, name: str) -> np.ndarray:
    return history.features[healthy_rows(history), FEATURE_NAMES.index(name)]


def test_healthy_field_heaters_miss_readings_and_their_elements_differ(histories):
    field, fast = histories["field"], histories["accelerated"]
    coverage = column(field, "coverage")
    assert (coverage < 1).mean() > 0.2 and coverage.mean() > 0.95
    assert (column(fast, "coverage") == 1).all()
    for history, low, high in ((field, 0.03, 0.2), (fast, 0.0, 0.001)):
        healthy = healthy_rows(history)
        power = history.features[:, FEATURE_NAMES.index("element_power_upper_w")]
        measured = healthy & np.isfinite(power)
        by_heater = np.array(
            [
                np.median(power[measured & (history.row_device == i)])
                for i in range(120)
                if (measured & (history.row_device == i)).any()
            ]
        )
        assert by_heater.size > 60
        assert low <= by_heater.std() / by_heater.mean() <= high, history.calibration


def test_healthy_field_heaters_show_nuisance_codes_false_leak_trips_and_owner_changes(histories):
    field, fast = histories["field"], histories["accelerated"]
    nuisance = sum(column(field, f"errors_{name}") for name in ("sensor", "heating_element", "other"))
    assert 0.01 < (nuisance > 0).mean() < 0.2 and np.nanmax(nuisance) <= 40, "a few minutes now and then"
    trips = column(field, "leak_sensor_trips")
    assert 0.01 < (trips > 0).mean() < 0.2 and ((trips > 0) == (column(field, "errors_tank_leak") > 0)).all()
    assert (column(fast, "errors_other") == 0).all() and (column(fast, "errors_sensor") == 0).all()
    setpoints = field.features[:, FEATURE_NAMES.index("setpoint_c")].reshape(-1, 120)
    changed = np.nanmax(setpoints, axis=0) - np.nanmin(setpoints, axis=0) > 0.5
    assert changed.any() and changed.mean() < 0.2


def test_history_says_its_calibration_and_the_default_stays_accelerated(histories, tmp_path):
    assert DEFAULT_CALIBRATION is ACCELERATED and calibration("field") is FIELD
    with pytest.raises(ValueError, match="field, accelerated"):
        calibration("fast")
    histories["field"].save(tmp_path / "h.npz")
    assert load_history(tmp_path / "h.npz").calibration == "field"
    assert generate_history(2, 1, seed=1, workers=1).calibration == "accelerated"


def test_field_history_is_the_same_in_parallel_shards():
    one = generate_history(300, 2, seed=4, start=SUMMER, workers=1, calibration=FIELD)
    two = generate_history(300, 2, seed=4, start=SUMMER, workers=2, calibration=FIELD)
    np.testing.assert_array_equal(one.features, two.features)
    assert one.failures == two.failures


def test_live_field_readings_have_gaps_and_duplicates_and_stay_valid():
    fleet = Fleet("gw-field", 20, seed=3, start=SUMMER, calibration=FIELD)
    counts, seen, duplicates = [], set(), 0
    for _ in range(720):
        readings = fleet.step()
        counts.append(len(readings))
        for r in readings:
            duplicates += (r.device_id, r.seq) in seen
            seen.add((r.device_id, r.seq))
    assert min(counts) < 20 and np.mean(counts) > 18
    assert duplicates > 0


def test_cli_takes_the_calibration_and_prints_the_acceleration_factor(tmp_path):
    for name, line in (("accelerated", "×3.1 the field rate"), ("field", "calibration field")):
        args = ["sim", "history", "--heaters", "3", "--days", "1", "--calibration", name, "--out", tmp_path / "h.npz"]
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 0, result.output
        assert line in result.stdout and load_history(tmp_path / "h.npz").calibration == name
    result = CliRunner().invoke(main, ["sim", "run", "--help"])
    assert "--calibration [field|accelerated]" in result.output
