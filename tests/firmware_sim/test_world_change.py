"""A change in the world: colder inlet water and a fast-wearing anode, in the history, the live fleet and the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from firmware_sim.fleet import FleetSimulator
from firmware_sim.history import History, generate_history
from firmware_sim.live import Fleet
from firmware_sim.world_change import MIN_INLET_C, WorldChange
from shared.features import FEATURE_NAMES
from shared.messages import Component

SUMMER = datetime(2025, 7, 1, tzinfo=UTC)  # mains water warm enough that a -6 K shift never reaches MIN_INLET_C
WATER_WH_PER_L_K = 4186.0 / 3600.0
#: the history below as the simulator made it before world changes existed (commit f024730)
PINNED_DIGEST = "bbfa4102022aeb793d84a0e6832e3e542cc46c37d07d3a31753213c4e31b2781"


def digest(history: History) -> str:
    sha = hashlib.sha256()
    for name in ("device_ids", "device_types", "row_device", "window_end", "features", "usage_next_24h_litres"):
        sha.update(getattr(history, name).tobytes())
    sha.update(repr(history.failures).encode())
    return sha.hexdigest()


def by_window(history: History, name: str) -> np.ndarray:
    """One feature as ``(windows, heaters)``."""
    return history.features[:, FEATURE_NAMES.index(name)].reshape(-1, len(history.device_ids))


def test_without_a_change_the_history_is_what_it_was_byte_for_byte():
    history = generate_history(heaters=100, days=15, seed=4, start=datetime(2025, 1, 10, tzinfo=UTC), workers=1)
    assert len(history.failures) == 3
    assert digest(history) == PINNED_DIGEST


def test_colder_inlet_water_costs_energy_as_the_energy_balance_says():
    heaters, shift = 40, -6.0
    change = WorldChange(at_days=4, inlet_shift_k=shift, inlet_ramp_days=2, new_anode_share=0.0)
    before = generate_history(heaters, days=12, seed=5, start=SUMMER, window_every_hours=24, workers=1)
    after = generate_history(heaters, 12, 5, start=SUMMER, window_every_hours=24, workers=1, change=change)
    # windows end at days 1..12: the first four end before the change and are untouched
    np.testing.assert_array_equal(before.features[: 4 * heaters], after.features[: 4 * heaters])
    assert list(after.device_types) == list(before.device_types)
    ramped = slice(6, None)  # windows from day 6 to 7 on: the ramp is complete

    inlet = by_window(after, "inlet_temperature_c")[ramped] - by_window(before, "inlet_temperature_c")[ramped]
    np.testing.assert_allclose(inlet, shift, atol=0.06)  # the readings carry tenths of a kelvin
    # the same draws (the counterfactual), so the extra energy per litre is the extra rise the water needs
    np.testing.assert_array_equal(by_window(after, "draw_volume_l"), by_window(before, "draw_volume_l"))
    extra_wh = (by_window(after, "energy_wh") - by_window(before, "energy_wh"))[ramped].sum()
    per_litre = extra_wh / by_window(before, "draw_volume_l")[ramped].sum()
    assert per_litre == pytest.approx(-shift * WATER_WH_PER_L_K, rel=0.25)
    # longer heating, the same elements; energy per litre per kelvin keeps its meaning
    for name in ("duty_cycle_lower", "duty_cycle_upper"):
        assert np.nanmean(by_window(after, name)[ramped]) > 1.05 * np.nanmean(by_window(before, name)[ramped])
    for name in ("recovery_rate_lower_c_per_min", "energy_per_litre_heated_wh_per_k"):
        ratio = np.nanmean(by_window(after, name)[ramped]) / np.nanmean(by_window(before, name)[ramped])
        assert ratio == pytest.approx(1.0, abs=0.1), name


def test_the_inlet_shift_ramps_in_and_stops_at_the_coldest_mains_water():
    change = WorldChange(at_days=1, inlet_shift_k=-8, inlet_ramp_days=1)
    inlet = np.array([[15.0] * 72, [5.0] * 72])
    shifted = change.shift_inlet(inlet, first_hour=0)
    np.testing.assert_array_equal(shifted[:, :24], inlet[:, :24])
    assert shifted[0, 24] == pytest.approx(15.0 - 8 * 0.5 / 24) and shifted[0, 36] == pytest.approx(11.0 - 1 / 6)
    np.testing.assert_allclose(shifted[0, 48:], 7.0)
    np.testing.assert_allclose(shifted[1, 48:], MIN_INLET_C)


def test_new_anode_heaters_leak_within_its_life_and_the_others_are_unchanged():
    heaters, at, days = 150, 5, 36
    change = WorldChange(
        at_days=at, inlet_shift_k=0.0, new_anode_share=0.5, anode_life_days=(5, 15), corrosion_days=(5, 15)
    )
    before = generate_history(heaters, days, seed=8, start=SUMMER, window_every_hours=24, workers=1)
    after = generate_history(heaters, days, 8, start=SUMMER, window_every_hours=24, workers=1, change=change)
    new = np.char.endswith(after.device_types.astype(str), "-al")
    assert new.sum() == 75
    assert list(np.char.replace(after.device_types.astype(str), "-al", "")) == list(before.device_types)
    fitted = set(after.device_ids[new])

    def leaks(history: History) -> dict[str, list[datetime]]:
        found: dict[str, list[datetime]] = {}
        for f in history.failures:
            if f.component is Component.TANK_LEAK:
                found.setdefault(f.device_id, []).append(f.failed_at)
        return found

    earliest = SUMMER + timedelta(days=at + change.anode_life_days[0] + change.corrosion_days[0])
    latest = SUMMER + timedelta(days=at + change.anode_life_days[1] + change.corrosion_days[1], hours=1)
    first_leaks = {device: times[0] for device, times in leaks(after).items() if device in fitted}
    assert set(first_leaks) == fitted, "every fast-wearing anode is spent and its tank leaks within the window"
    old_anode = {device: times[0] for device, times in leaks(before).items() if device in fitted}
    assert len(old_anode) <= 2, "with the old anode nearly all their tanks would have lasted"
    for device, leaked in first_leaks.items():
        # an old tank already due to leak before the new anode is spent still leaks when it would have
        assert earliest <= leaked <= latest or leaked == old_anode.get(device), device
        assert leaked <= old_anode.get(device, leaked)

    # the seep shows in the days before each leak: make-up flow with no draw
    makeup = by_window(after, "makeup_flow_no_draw_l")
    for device, failed_at in first_leaks.items():
        day = (failed_at - SUMMER).days  # window index `day - 2` ends a day or more before the leak
        assert makeup[day - 2, list(after.device_ids).index(device)] > 0, device

    # the other heaters fail as they did; every heater is untouched until the change
    def old_failures(history: History) -> list[tuple]:
        return [(f.device_id, f.component, f.failed_at) for f in history.failures if f.device_id not in fitted]

    assert old_failures(after) == old_failures(before) and old_failures(before)
    np.testing.assert_array_equal(before.features[: at * heaters], after.features[: at * heaters])


def test_the_new_anode_makes_sediment_build_up_more_often():
    change = WorldChange(at_days=0, sediment_factor=3.0, new_anode_share=0.5)
    fleet = FleetSimulator(2000, 3, SUMMER, device_prefix="sed", change=change)
    fleet.next_block()
    faults = fleet.faults
    fitted = faults.new_anode
    assert fitted.sum() == 1000 and (faults.sediment_rate[fitted] == 3.0).all()
    waiting = faults.fail_h[Component.SEDIMENT].astype(float)
    assert np.median(waiting[fitted]) < 0.5 * np.median(waiting[~fitted])
    # the tank now waits on the anode's life and corrosion, not on the years of the old tank life
    leak_h = faults.fail_h[Component.TANK_LEAK][fitted]
    soonest = 24 * (change.anode_life_days[0] + change.corrosion_days[0])
    in_window = (leak_h >= soonest) & (leak_h <= 24 * (change.anode_life_days[1] + change.corrosion_days[1]) + 1)
    assert in_window.mean() > 0.95, "all but the old tanks already seeping or due to leak sooner"
    assert (leak_h[~in_window] < soonest).all()


def test_the_change_is_the_same_in_parallel_shards():
    change = WorldChange(at_days=1, new_anode_share=0.4)
    serial = generate_history(heaters=260, days=2, seed=9, start=SUMMER, workers=1, change=change)
    parallel = generate_history(heaters=260, days=2, seed=9, start=SUMMER, workers=2, change=change)
    assert digest(parallel) == digest(serial)
    assert sum(t.endswith("-al") for t in serial.device_types) == 100 + 4  # 40 % of each shard of 250 and 10


def content(reading) -> dict:
    return reading.model_dump(exclude={"msg_id"})


def test_live_fleet_honours_a_change_injected_while_it_runs():
    start = SUMMER + timedelta(hours=5)
    change = WorldChange(at_days=0.5, inlet_shift_k=-6.0, inlet_ramp_days=0, new_anode_share=0.5)
    planned = Fleet("gw-wc", 4, seed=2, start=start, change=change)
    injected = Fleet("gw-wc", 4, seed=2, start=start)
    unchanged = Fleet("gw-wc", 4, seed=2, start=start)
    for _ in range(120):
        assert [content(r) for r in injected.step()] == [content(r) for r in planned.step()]
        unchanged.step()
    assert injected.earliest_change_day == 0.25, "the first six hours are already simulated"
    with pytest.raises(ValueError, match="in the past"):
        injected.inject_change(dataclasses.replace(change, at_days=0.2))
    assert injected.inject_change(change) == start + timedelta(hours=12)
    with pytest.raises(ValueError, match="already has a world change"):
        injected.inject_change(change)

    for minute in range(121, 16 * 60):
        readings, expected, baseline = injected.step(), planned.step(), unchanged.step()
        assert [content(r) for r in readings] == [content(r) for r in expected]
        types = [r.device_type for r in readings]
        if minute < 12 * 60:
            assert types == [r.device_type for r in baseline]
            assert [r.current_inlet_temperature for r in readings] == [r.current_inlet_temperature for r in baseline]
    assert sum(t.endswith("-al") for t in types) == 2
    assert [t.removesuffix("-al") for t in types] == [r.device_type for r in baseline]
    shifts = [
        new.current_inlet_temperature - old.current_inlet_temperature
        for new, old in zip(readings, baseline, strict=True)
    ]
    np.testing.assert_allclose(shifts, -6.0, atol=0.11)


def test_bad_changes_are_refused_with_the_reason():
    for kwargs, reason in (
        ({"at_days": -1}, "0 days or later"),
        ({"at_days": 1, "inlet_shift_k": -40}, "within ±15"),
        ({"at_days": 1, "new_anode_share": 1.5}, "between 0 and 1"),
        ({"at_days": 1, "anode_life_days": (30, 10)}, "anode_life_days"),
        ({"at_days": 1, "device_type_suffix": "/x"}, "invalid device type"),
        ({"at_days": 1, "device_type_suffix": ""}, "suffix"),
    ):
        with pytest.raises(ValueError, match=reason):
            WorldChange(**kwargs)
    with pytest.raises(ValueError, match="after the history's 2 days"):
        generate_history(heaters=2, days=2, seed=0, start=SUMMER, change=WorldChange(at_days=2))
