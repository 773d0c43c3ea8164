"""Ring-buffer windows give exactly the windows (and features) of shared.features.window_from_readings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edge_agent.windows import _CODE_BITS, _FLAGS, HeaterWindows
from firmware_sim.live import Fleet
from shared.features import WINDOW_FIELDS, TelemetryWindow, compute_features, window_from_readings
from shared.telemetry import Telemetry

START = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def readings():
    """A day and a half of real simulated telemetry from three heaters, with gaps and a duplicate."""
    fleet = Fleet("gw-w", heaters=3, seed=4, start=START)
    minutes = [fleet.step() for _ in range(36 * 60)]
    flat = [r for minute in minutes for r in minute]
    kept = [r for r in flat if not (r.device_id.endswith("1") and 600 <= (r.ts - START).total_seconds() / 60 < 900)]
    return kept + [kept[-1]]  # a redelivered reading changes nothing


def _row(window: TelemetryWindow, row: int) -> TelemetryWindow:
    return TelemetryWindow(**{name: getattr(window, name)[row : row + 1] for name in WINDOW_FIELDS})


def _assert_same(mine, theirs):
    for name in WINDOW_FIELDS:
        np.testing.assert_array_equal(getattr(mine, name), getattr(theirs, name), err_msg=name)


@pytest.mark.parametrize("minutes_before_end", [0, 1, 179])
def test_windows_and_features_match_the_shared_definition(readings, minutes_before_end):
    windows = HeaterWindows(slack_minutes=180)
    for reading in readings:
        windows.add(reading)
    end = max(r.ts for r in readings) - timedelta(minutes=minutes_before_end)
    heaters = [device_id for device_id, _ in windows.heaters(end)]
    assert len(heaters) == 3

    mine = windows.window(heaters, end)
    per_heater = []
    for row, device_id in enumerate(heaters):
        theirs = window_from_readings([r for r in readings if r.device_id == device_id], end=end)
        _assert_same(_row(mine, row), theirs)
        per_heater.append(compute_features(theirs))
    # one batch over all heaters; numpy may sum a batch in another order, hence float32 rounding
    np.testing.assert_allclose(compute_features(mine), np.concatenate(per_heater), rtol=1e-5, equal_nan=True)
    # a tick computes them a few heaters at a time, to keep its memory small
    np.testing.assert_allclose(
        windows.features(heaters, end, chunk=2), compute_features(mine), rtol=1e-5, equal_nan=True
    )


@pytest.mark.parametrize("later_seq", [7, 2**31 + 5, 2**53 - 1])
def test_of_two_readings_for_one_minute_the_later_sequence_number_stays_in_either_order(readings, later_seq):
    """Sequence numbers are kept as int32 offsets from a heater's first; one far beyond int32 still compares exactly."""
    first = next(r for r in readings if r.device_id.endswith("0"))
    earlier = first.model_copy(update={"seq": 3})
    later = first.model_copy(update={"seq": later_seq, "dhw_temperature": first.dhw_temperature + 1.0})
    end = first.ts + timedelta(minutes=1)
    for order in ([earlier, later], [later, earlier]):
        windows = HeaterWindows()
        for reading in order:
            windows.add(reading)
        mine = windows.window([first.device_id], end)
        _assert_same(mine, window_from_readings(order, end))
        assert np.nanmax(mine.dhw_temperature) == np.float32(later.dhw_temperature)


def test_silent_heaters_are_forgotten(readings):
    windows = HeaterWindows()
    for reading in readings[:30]:
        windows.add(reading)
    assert len(windows) == 3
    assert windows.forget_before(START + timedelta(days=2)) and len(windows) == 0


def test_error_codes_and_flags_come_back_exactly(readings):
    """The whole-number fields a ring packs into one uint16: every flag combination, codes up to the bound."""
    codes = [0, 1, 96, 326, 511, 512, 907, 998, 999]
    varied = [
        reading.model_copy(
            update={
                "error_code": codes[n % len(codes)],
                "heat_upper_use": bool(n & 1),
                "heat_lower_use": bool(n & 2),
                "wtr_ovr_sensor_use": bool(n & 4),
            }
        )
        for n, reading in enumerate(r for r in readings if r.device_id == readings[0].device_id)
    ]
    windows = HeaterWindows()
    for reading in varied:
        windows.add(reading)
    end = max(r.ts for r in varied)
    mine = windows.window([varied[0].device_id], end)
    _assert_same(mine, window_from_readings(varied, end=end))
    assert set(np.unique(mine.error_code[np.isfinite(mine.error_code)])) == set(codes)


def test_the_packed_error_code_has_room_for_every_code_telemetry_allows():
    maximum = Telemetry.model_json_schema()["properties"]["error_code"]["maximum"]
    assert maximum < 2**_CODE_BITS
    assert all(Telemetry.model_fields[name].annotation in (bool, "bool") for name in _FLAGS)
