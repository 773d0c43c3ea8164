"""FeatureStore over a real SQLite file: writes the ingest format, reads a device's history, labels point in time."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import sqlite_utils

from cloud.errors import Invalid, Refused
from cloud.feature_store import FeatureStore, LatestValue, UnknownDataset, UnknownDevice
from cloud.ingest import feature_codec
from cloud.training.labels import CLASSES
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from tests.feature_store.conftest import AS_OF, DAY, HORIZON, T0, add_device, add_outcome, vector


def _daily_rows(store: FeatureStore, device_id: str, days: int) -> None:
    for day in range(days):
        store.store_device_features(device_id, vector(float(day)), T0 + day * DAY)


def _labels_by_day(dataset, device_id: str) -> dict[int, str]:
    mine = dataset.device_ids == device_id
    days = (dataset.window_ends[mine] - np.datetime64(T0.replace(tzinfo=None), "s")) // np.timedelta64(1, "D")
    return {int(day): dataset.classes[label] for day, label in zip(days, dataset.labels[mine], strict=True)}


def test_stored_features_are_the_ingest_format_and_read_back(store: FeatureStore, db: sqlite_utils.Database) -> None:
    assert store.store_device_features("wh-1", vector(1.5), T0) is True
    assert store.store_device_features("wh-1", vector(99.0), T0) is False  # idempotent: the first row is kept

    stored = feature_codec.read_features(db.conn, FEATURE_SET_VERSION)
    assert stored.device_ids == ["wh-1"] and stored.feature_names == FEATURE_NAMES
    assert stored.values[0].tolist() == [1.5 + i for i in range(len(FEATURE_NAMES))]


def test_a_vector_must_name_exactly_the_feature_set(store: FeatureStore, db: sqlite_utils.Database) -> None:
    incomplete = vector(1.0)
    del incomplete[FEATURE_NAMES[0]]

    with pytest.raises(Invalid, match=f"missing \\['{FEATURE_NAMES[0]}'\\]"):
        store.store_device_features("wh-1", incomplete, T0)
    with pytest.raises(Invalid, match="unknown \\['bogus'\\]"):
        store.store_device_features("wh-1", {**vector(1.0), "bogus": 1.0}, T0)
    assert db["features"].count == 0


def test_device_features_by_name_and_half_open_range(store: FeatureStore) -> None:
    _daily_rows(store, "wh-1", 5)
    _daily_rows(store, "wh-2", 5)
    names = [FEATURE_NAMES[2], FEATURE_NAMES[0]]

    got = store.get_device_features("wh-1", names, (T0 + DAY, T0 + 3 * DAY))

    assert got.feature_names == names
    assert [w[:10] for w in got.window_ends] == ["2026-01-02", "2026-01-03"]
    assert got.values.tolist() == [[3.0, 1.0], [4.0, 2.0]]
    assert store.get_device_features("wh-1").values.shape == (5, len(FEATURE_NAMES))


def test_device_features_errors_name_what_is_wrong(store: FeatureStore) -> None:
    _daily_rows(store, "wh-1", 1)

    with pytest.raises(UnknownDevice, match="wh-9"):
        store.get_device_features("wh-9")
    with pytest.raises(Invalid, match="no feature \\['bogus'\\]"):
        store.get_device_features("wh-1", ["bogus"])
    assert store.get_device_features("wh-1", time_range=(T0 + DAY, None)).values.shape == (0, len(FEATURE_NAMES))


def test_latest_values_say_how_stale_each_is(store: FeatureStore) -> None:
    _daily_rows(store, "wh-1", 3)
    newest = vector(7.0)
    newest[FEATURE_NAMES[1]] = None  # the newest window could not compute this feature
    store.store_device_features("wh-1", newest, T0 + 3 * DAY)

    latest = store.latest_features("wh-1", as_of=T0 + 3 * DAY + timedelta(hours=6))

    first, second = latest.values[FEATURE_NAMES[0]], latest.values[FEATURE_NAMES[1]]
    assert (first.value, first.age_seconds) == (7.0, 6 * 3600)
    assert (second.value, second.age_seconds) == (3.0, DAY.total_seconds() + 6 * 3600)  # from day 2's row
    assert second.window_end.startswith("2026-01-03")
    assert set(latest.values) == set(FEATURE_NAMES)
    with pytest.raises(UnknownDevice):
        store.latest_features("wh-9")


def test_a_feature_never_reported_has_no_latest_value(store: FeatureStore) -> None:
    row = vector(1.0)
    row[FEATURE_NAMES[0]] = None
    store.store_device_features("wh-1", row, T0)

    latest = store.latest_features("wh-1", as_of=T0 + DAY)

    assert latest.values[FEATURE_NAMES[0]] is None
    assert latest.values[FEATURE_NAMES[1]].value == 2.0


def test_training_labels_are_point_in_time(store: FeatureStore, db: sqlite_utils.Database) -> None:
    _daily_rows(store, "wh-a", 10)
    _daily_rows(store, "wh-b", 10)
    add_outcome(db, "wh-a", T0 + 5 * DAY + timedelta(hours=12), "heating_element", "failed")
    add_outcome(db, "wh-b", T0 + 4 * DAY, "thermostat", "replaced")  # exactly at day 4's row: labels only days 1-3
    add_outcome(db, "wh-b", T0 + 8 * DAY, "sediment", "ok")  # an inspection that found nothing is no failure
    add_outcome(db, "wh-b", T0 + 9 * DAY, None, "failed")  # no component: nothing to label

    dataset = store.get_training_dataset(None, T0, T0 + 10 * DAY, horizon=HORIZON, as_of=AS_OF)

    a, b = _labels_by_day(dataset, "wh-a"), _labels_by_day(dataset, "wh-b")
    assert [day for day, label in a.items() if label == "heating_element"] == [3, 4, 5]
    assert set(a.values()) == {"none", "heating_element"}  # the failure before days 6-9 does not label them
    assert [day for day, label in b.items() if label == "thermostat"] == [1, 2, 3]
    assert set(b.values()) == {"none", "thermostat"}
    assert dataset.record.row_count == 20 and dataset.values.shape == (20, len(FEATURE_NAMES))
    assert list(dataset.classes) == CLASSES


def test_censored_rows_and_outcomes_not_yet_known_are_left_out(store: FeatureStore, db: sqlite_utils.Database) -> None:
    _daily_rows(store, "wh-a", 10)
    add_outcome(db, "wh-a", T0 + 7 * DAY, "tank_leak", "failed")  # observed by as_of, received an hour later
    as_of = T0 + 7 * DAY + timedelta(minutes=30)

    dataset = store.get_training_dataset(None, T0, T0 + 10 * DAY, horizon=HORIZON, as_of=as_of)

    # days 0-4 had their whole horizon observed; days 5-9 had not and the failure was not yet known: censored
    assert _labels_by_day(dataset, "wh-a") == dict.fromkeys(range(5), "none")
    later = store.get_training_dataset(None, T0, T0 + 10 * DAY, horizon=HORIZON, as_of=T0 + 8 * DAY)
    # day 6 saw the leak too, but its horizon (to day 9) had not passed by day 8: censored like a healthy row
    assert [d for d, label in _labels_by_day(later, "wh-a").items() if label == "tank_leak"] == [4, 5]
    assert 6 not in _labels_by_day(later, "wh-a") and 7 not in _labels_by_day(later, "wh-a")


def test_dataset_window_features_and_device_type(store: FeatureStore, db: sqlite_utils.Database) -> None:
    _daily_rows(store, "wh-a", 6)
    _daily_rows(store, "wh-g", 6)
    add_device(db, "wh-a", "tank-50gal-electric")
    add_device(db, "wh-g", "tank-40gal-gas")
    names = [FEATURE_NAMES[3]]

    dataset = store.get_training_dataset(
        names, T0 + DAY, T0 + 4 * DAY, device_type="tank-40gal-gas", horizon=HORIZON, as_of=AS_OF
    )

    assert set(dataset.device_ids.tolist()) == {"wh-g"}
    assert dataset.values[:, 0].tolist() == [4.0, 5.0, 6.0]
    assert dataset.record.query["device_type"] == "tank-40gal-gas" and dataset.record.query["feature_names"] == names
    with pytest.raises(Invalid, match="no feature \\['bogus'\\]"):
        store.get_training_dataset(["bogus"], T0, T0 + DAY, feature_set_version=FEATURE_SET_VERSION)
    with pytest.raises(Invalid, match="must be before end_date"):
        store.get_training_dataset(None, T0 + DAY, T0)


def test_each_dataset_is_recorded_and_its_hash_is_stable_for_the_same_data(
    store: FeatureStore, db: sqlite_utils.Database
) -> None:
    _daily_rows(store, "wh-a", 6)
    add_outcome(db, "wh-a", T0 + 4 * DAY, "sensor", "failed")
    build = lambda: store.get_training_dataset(None, T0, T0 + 6 * DAY, horizon=HORIZON, as_of=AS_OF)  # noqa: E731

    first, second = build(), build()

    assert first.record.dataset_id != second.record.dataset_id
    assert first.record.content_hash == second.record.content_hash
    recorded = store.get_dataset_record(first.record.dataset_id)
    assert (recorded.row_count, recorded.content_hash, recorded.query) == (
        6,
        first.record.content_hash,
        first.record.query,
    )
    assert db["datasets"].count == 2
    again = store.load_dataset(first.record.dataset_id)
    assert np.array_equal(again.values, first.values) and np.array_equal(again.labels, first.labels)

    add_outcome(db, "wh-a", T0 + 2 * DAY, "thermostat", "failed")  # history rewritten under the recorded dataset
    assert build().record.content_hash != first.record.content_hash
    with pytest.raises(Refused, match="has changed since it was recorded"):
        store.load_dataset(first.record.dataset_id)
    with pytest.raises(UnknownDataset):
        store.get_dataset_record("nope")


def test_an_empty_window_is_an_empty_recorded_dataset(store: FeatureStore) -> None:
    dataset = store.get_training_dataset(None, T0, T0 + DAY, as_of=AS_OF)

    assert dataset.record.row_count == 0 and dataset.values.shape == (0, len(FEATURE_NAMES))
    assert len(dataset.record.content_hash) == 64


def test_reading_in_chunks_gives_the_same_dataset(
    store: FeatureStore, db: sqlite_utils.Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    devices = ["wh-1", "wh-10", "a", "wh-2.b", "z" * 64]  # ids of different lengths, not inserted in order
    for day in range(5):
        for n, device_id in enumerate(devices):
            store.store_device_features(device_id, vector(day * 10.0 + n), T0 + day * DAY)
    add_outcome(db, "wh-10", T0 + 3 * DAY, "sensor", "failed")
    build = lambda: store.get_training_dataset(None, T0, T0 + 5 * DAY, horizon=HORIZON, as_of=AS_OF)  # noqa: E731
    whole = build()

    monkeypatch.setattr("cloud.feature_store._CHUNK_ROWS", 3)  # chunk edges fall inside one window end
    chunked = build()

    assert chunked.record.content_hash == whole.record.content_hash and chunked.record.row_count == 25
    assert chunked.device_ids.tolist()[:5] == sorted(devices)
    assert np.array_equal(chunked.values, whole.values) and np.array_equal(chunked.labels, whole.labels)
    assert _labels_by_day(chunked, "wh-10") == {0: "sensor", 1: "sensor", 2: "sensor", 3: "none", 4: "none"}


def test_a_device_id_must_be_an_id(store: FeatureStore) -> None:
    with pytest.raises(ValueError, match="invalid device id"):
        store.store_device_features("wh 1/x", vector(1.0), T0)


def test_a_device_read_spans_feature_set_versions(store: FeatureStore) -> None:
    store.store_device_features("wh-1", vector(1.0), T0)
    store.store_device_features("wh-1", {FEATURE_NAMES[0]: 5.0, "new_feature": 6.0}, T0 + DAY, feature_set_version="v9")

    got = store.get_device_features("wh-1", [FEATURE_NAMES[0], FEATURE_NAMES[1], "new_feature"])
    latest = store.latest_features("wh-1", as_of=T0 + 2 * DAY)

    assert np.array_equal(got.values, np.array([[1.0, 2.0, np.nan], [5.0, np.nan, 6.0]]), equal_nan=True)
    assert latest.values[FEATURE_NAMES[0]].value == 5.0 and latest.values[FEATURE_NAMES[1]].value == 2.0
    assert latest.values["new_feature"].value == 6.0
    with pytest.raises(Invalid, match="missing \\['new_feature'\\]"):
        store.store_device_features("wh-1", {FEATURE_NAMES[0]: 1.0}, T0 + 2 * DAY, feature_set_version="v9")


def test_latest_looks_back_across_chunks_and_windows_without_the_device(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.store_device_features("wh-1", vector(1.0), T0)
    for day in range(1, 6):  # other heaters' windows after wh-1's last one
        store.store_device_features("wh-2", vector(float(day)), T0 + day * DAY)
    monkeypatch.setattr("cloud.feature_store._LATEST_CHUNK", 2)

    latest = store.latest_features("wh-1", as_of=T0 + 6 * DAY)
    only_before = store.latest_features("wh-2", as_of=T0 + 2 * DAY)  # the cutoff's own window counts

    assert latest.values[FEATURE_NAMES[0]] == LatestValue(1.0, "2026-01-01T00:00:00.000000Z", 6 * DAY.total_seconds())
    assert only_before.values[FEATURE_NAMES[0]] == LatestValue(2.0, "2026-01-03T00:00:00.000000Z", 0.0)
    assert store.get_device_features("wh-1").window_ends == ["2026-01-01T00:00:00.000000Z"]
