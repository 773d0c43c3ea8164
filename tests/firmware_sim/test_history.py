"""History generation: deterministic, labelled, round-trips, and its features are compute_features'."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from firmware_sim.fleet import FleetSimulator
from firmware_sim.history import generate_history, load_history
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION, TelemetryWindow, compute_features

START = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def history():
    return generate_history(heaters=40, days=4, seed=21, start=START)


def assert_same(a, b):
    assert a.feature_names == b.feature_names and a.feature_set_version == b.feature_set_version
    for name in ("device_ids", "device_types", "row_device", "window_end", "features", "usage_next_24h_litres"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.failures == b.failures


def test_shape_and_labels(history):
    windows = 4 * 4 - 3  # every 6 h from the end of day 1 to the end of day 4
    assert history.features.shape == (windows * 40, len(FEATURE_NAMES))
    assert history.feature_set_version == FEATURE_SET_VERSION and history.feature_names == FEATURE_NAMES
    assert history.window_end[0] == np.datetime64("2025-03-02T00:00:00")
    assert history.window_end[-1] == np.datetime64("2025-03-05T00:00:00")
    assert set(history.row_device) == set(range(40)) and len(history.device_ids) == 40
    assert set(history.device_types) <= {"nwp500-50", "nwp500-65", "nwp500-80"}
    usage = history.usage_next_24h_litres.reshape(windows, 40)
    assert np.isfinite(usage[:9]).all() and np.isnan(usage[9:]).all(), "known only while 24 h remain"
    assert 20 < np.median(usage[:9]) < 600
    # next-24 h usage of one window is the drawn volume the window a day later saw
    drawn = history.features[:, FEATURE_NAMES.index("draw_volume_l")].reshape(windows, 40)
    np.testing.assert_allclose(usage[0], drawn[4], rtol=0.05, atol=2.0)


def test_same_seed_same_history_other_seed_differs(history):
    assert_same(history, generate_history(heaters=40, days=4, seed=21, start=START))
    other = generate_history(heaters=40, days=4, seed=22, start=START)
    assert not np.array_equal(np.nan_to_num(other.features), np.nan_to_num(history.features))


def test_parallel_shards_give_the_same_history():
    serial = generate_history(heaters=260, days=2, seed=9, start=START, workers=1)
    reported = []
    parallel = generate_history(
        heaters=260, days=2, seed=9, start=START, workers=2, progress=lambda d, t: reported.append(d)
    )
    assert_same(parallel, serial)
    assert reported == sorted(reported) and reported[-1] == pytest.approx(2.0)
    assert list(serial.device_ids) == [f"sim9-{i:05d}" for i in range(260)]


def test_round_trip(history, tmp_path):
    path = tmp_path / "history.bin"
    history.save(path)
    assert path.exists()
    assert_same(load_history(path), history)


def test_failures_are_recorded_and_show_their_error_codes():
    history = generate_history(heaters=500, days=10, seed=4, start=START, window_every_hours=24, workers=1)
    assert len(history.failures) >= 3
    assert sum(history.failure_counts().values()) == len(history.failures)
    ends = history.window_end.astype("datetime64[s]")
    for failure in history.failures:
        assert failure.repaired_at > failure.failed_at and START <= failure.failed_at < datetime(
            2025, 3, 11, tzinfo=UTC
        )
        device = list(history.device_ids).index(failure.device_id)
        failed_at = np.datetime64(failure.failed_at.replace(tzinfo=None), "s")
        next_window = np.flatnonzero((history.row_device == device) & (ends > failed_at))[0]
        errors = history.features[next_window, FEATURE_NAMES.index(f"errors_{failure.component.value}")]
        assert errors > 0, failure


def test_history_rows_equal_compute_features_on_the_raw_telemetry(history):
    fleet = FleetSimulator(40, 21, START, device_prefix="sim21")
    blocks = [fleet.next_block().window for _ in range(6)]  # the window ending at day 1 + 12 h
    window = TelemetryWindow(
        **{name: np.concatenate([getattr(b, name) for b in blocks[2:6]], axis=1) for name in vars(blocks[0])}
    )
    np.testing.assert_array_equal(compute_features(window), history.features[2 * 40 : 3 * 40])


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="multiple of 6"):
        generate_history(heaters=2, days=2, seed=0, start=START, window_every_hours=8)
    with pytest.raises(ValueError, match="at least one day"):
        generate_history(heaters=2, days=0, seed=0, start=START)
    with pytest.raises(ValueError, match="timezone"):
        generate_history(heaters=2, days=1, seed=0, start=datetime(2025, 1, 1))
