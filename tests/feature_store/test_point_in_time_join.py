"""The point-in-time join of a training dataset against simple references, on random data with its edge cases.

Each feature row at time t takes the first failure of its device strictly after t (ties at one time: the first
listed), labelled only within the horizon, and -1 where its horizon runs past what was observed. The references are a
loop over rows (the definition, read literally) and DuckDB's ASOF JOIN; the dataset test stores random rows in the
database the run uses (SQLite, or PostgreSQL with IOTSPHERE_TEST_DATABASE=postgresql) and checks every column the
store reads back, device ids of every length and chunk edges included.
"""

from __future__ import annotations

import hashlib
import json
import string
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.feature_store import FeatureStore, ObservedFailure, content_hash
from cloud.storage import open_database
from cloud.training.labels import CLASSES, FailureTimes, label_rows
from shared.features import FEATURE_NAMES
from tests.feature_store.conftest import T0
from tests.postgres_run import database_at

EPOCH = np.datetime64(T0.replace(tzinfo=None), "s")
HOUR = np.timedelta64(3600, "s")
COMPONENTS = CLASSES[1:]


def _reference(row_device, row_time, failures: FailureTimes, horizon, observed_until) -> list[int]:
    """The definition as a loop: the earliest failure of the row's device strictly after it, the first listed of
    those at that time; its class if within the horizon, else 0; -1 if the horizon was not wholly observed."""
    labels = []
    for device, time in zip(row_device.tolist(), row_time, strict=True):
        after = [i for i in range(failures.device.size) if failures.device[i] == device and failures.time[i] > time]
        label = 0
        if after:
            first = min(after, key=lambda i: (failures.time[i], i))
            label = int(failures.label[first]) if failures.time[first] - time <= horizon else 0
        labels.append(-1 if time + horizon > observed_until else label)
    return labels


def _duckdb(row_device, row_time, failures: FailureTimes, horizon, observed_until) -> list[int]:
    """The same join as DuckDB's ASOF JOIN (``r.t < f.t``: the nearest failure strictly after the row)."""
    seconds = lambda times: (times - EPOCH).astype(np.int64)  # noqa: E731
    rows = {"i": np.arange(row_device.size), "device": row_device.astype(np.int64), "t": seconds(row_time)}
    found = {"device": failures.device.astype(np.int64), "t": seconds(failures.time), "label": failures.label}
    with duckdb.connect() as connection:
        connection.register("rows", rows)
        connection.register("found", found)
        labels = connection.execute(
            "SELECT CASE WHEN r.t + $h > $until THEN -1 WHEN f.t - r.t <= $h THEN f.label ELSE 0 END"
            " FROM rows AS r ASOF LEFT JOIN found AS f ON r.device = f.device AND r.t < f.t ORDER BY r.i",
            {
                "h": int(horizon / np.timedelta64(1, "s")),
                "until": int((observed_until - EPOCH) / np.timedelta64(1, "s")),
            },
        ).fetchall()
    return [label for (label,) in labels]


@st.composite
def _join_inputs(draw, ties: bool = True):
    """Rows and failures on a coarse clock (many equal times), horizons that end exactly on failures, failures at
    a row's own time, before every row, on devices with no rows, and (``ties``) several at one time."""
    n_rows = draw(st.integers(0, 40))
    row_device = np.array(draw(st.lists(st.integers(0, 3), min_size=n_rows, max_size=n_rows)), dtype=np.int64)
    row_hours = draw(st.lists(st.integers(0, 30), min_size=n_rows, max_size=n_rows))
    failure = st.tuples(st.integers(0, 4), st.integers(-2, 40), st.integers(1, len(CLASSES) - 1))
    listed = draw(st.lists(failure, max_size=12, unique_by=None if ties else (lambda f: (f[0], f[1]))))
    failures = FailureTimes(
        device=np.array([d for d, _, _ in listed], dtype=np.int64),
        time=EPOCH + np.array([h for _, h, _ in listed], dtype=np.int64) * HOUR,
        label=np.array([c for _, _, c in listed], dtype=np.int64),
    )
    horizon = draw(st.integers(1, 12)) * HOUR
    observed_until = EPOCH + draw(st.integers(0, 45)) * HOUR
    return row_device, EPOCH + np.array(row_hours, dtype=np.int64) * HOUR, failures, horizon, observed_until


def _label(inputs) -> list[int]:
    row_device, row_time, failures, horizon, observed_until = inputs
    if not row_device.size:
        return []
    return label_rows(row_device, row_time, failures, horizon.astype(object), observed_until).tolist()


@given(_join_inputs())
@settings(max_examples=300, deadline=None)
def test_the_join_is_the_definition(inputs) -> None:
    assert _label(inputs) == _reference(*inputs)


@given(_join_inputs(ties=False))
@settings(max_examples=100, deadline=None)
def test_the_join_is_duckdbs_asof_join(inputs) -> None:
    # without ties at one (device, time): DuckDB does not say which of several equal times its ASOF JOIN takes
    assert _label(inputs) == _duckdb(*inputs)


def test_ties_take_the_failure_listed_first() -> None:
    failures = FailureTimes(
        device=np.array([0, 0, 0]), time=EPOCH + np.array([5, 5, 9]) * HOUR, label=np.array([3, 1, 2])
    )
    rows = np.array([0, 0, 0]), EPOCH + np.array([0, 5, 4]) * HOUR

    assert _label((*rows, failures, 6 * HOUR, EPOCH + 100 * HOUR)) == [3, 2, 3]


def _old_content_hash(feature_names, devices, row_device, window_ends, values, labels) -> str:
    """``content_hash`` as datasets were recorded with (np.unique and tobytes): they must still verify."""
    used, codes = np.unique(row_device, return_inverse=True)
    digest = hashlib.sha256()
    digest.update(json.dumps({"feature_names": feature_names, "classes": CLASSES}).encode())
    digest.update("\n".join(devices[used].tolist()).encode())
    digest.update(codes.astype(np.int64).tobytes())
    digest.update(window_ends.astype("datetime64[s]").astype(np.int64).tobytes())
    digest.update(np.ascontiguousarray(values, dtype=np.float32).tobytes())
    digest.update(labels.astype(np.int64).tobytes())
    return digest.hexdigest()


def test_the_content_hash_is_the_one_datasets_were_recorded_with() -> None:
    rng = np.random.default_rng(7)
    devices = np.array(["a", "b", "c", "d", "e"])
    row_device = rng.choice([0, 2, 3], size=50)  # devices 1 and 4 have no rows left
    window_ends = EPOCH + np.sort(rng.integers(0, 100, size=50)) * HOUR
    values = rng.normal(size=(50, 3)).astype(np.float32)[:, [2, 0, 1]]  # not contiguous
    labels = rng.integers(-1, 4, size=50)
    names = ["x", "y", "z"]

    assert content_hash(names, devices, row_device, window_ends, values, labels) == _old_content_hash(
        names, devices, row_device, window_ends, values, labels
    )


def _device_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Ids of 1 to 64 characters (across the 8-byte words the reader hashes), some prefixes of others."""
    first, rest = list(string.ascii_letters + string.digits), list(string.ascii_letters + string.digits + "_.-")
    ids = {str(rng.choice(first)) + "".join(rng.choice(rest, size=int(rng.integers(0, 64)))) for _ in range(n)}
    ids |= {"wh-1", "wh-10", "wh-1.", "z" * 64, "z" * 63, "a" * 8, "a" * 9}
    return sorted(ids)


@pytest.mark.parametrize("seed", [1, 2])
def test_a_stored_dataset_is_the_reference_join_of_what_was_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    devices = _device_ids(rng, 25)
    # each device's rows at random hours of 10 days (some hours none, some every device)
    keys = {(device, int(hour)) for device in devices for hour in rng.integers(0, 240, size=int(rng.integers(0, 12)))}
    row_device_id, row_hour = map(list, zip(*sorted(keys), strict=True))
    values = rng.normal(size=(len(keys), len(FEATURE_NAMES)))
    values[rng.random(values.shape) < 0.1] = np.nan  # features a gateway sent as null
    failed = [str(device) for device in rng.choice(sorted(set(row_device_id)), size=12)] + ["never-had-a-row"]
    hours = rng.integers(-24, 260, size=len(failed))  # some before the rows' period, some not known by as_of
    hours[0] = 50
    observed = [
        ObservedFailure(device, COMPONENTS[int(rng.integers(1, len(COMPONENTS)))], T0 + timedelta(hours=int(hour)))
        for device, hour in zip(failed, hours, strict=True)
    ]
    observed.append(ObservedFailure(failed[0], COMPONENTS[0], T0 + timedelta(hours=int(hours[0]))))  # a tie
    db = open_database(database_at(tmp_path / "iotsphere.db"))
    store = FeatureStore(db)
    store.store_feature_rows(row_device_id, EPOCH + np.array(row_hour) * HOUR, values, list(FEATURE_NAMES))
    store.store_component_failures(observed)
    monkeypatch.setattr("cloud.feature_store._CHUNK_ROWS", 7)  # chunk edges inside window ends
    names = [FEATURE_NAMES[3], FEATURE_NAMES[0], FEATURE_NAMES[-1]]  # a subset, not in stored order
    horizon = timedelta(hours=36)
    as_of = T0 + timedelta(hours=200)

    dataset = store.get_training_dataset(names, T0, T0 + timedelta(hours=240), horizon=horizon, as_of=as_of)

    order = sorted(range(len(keys)), key=lambda i: (row_hour[i], row_device_id[i]))
    all_devices = np.array(sorted(set(row_device_id)))
    failures = store.known_failures(all_devices, dataset.record.query["start_date"], dataset.record.query["as_of"])
    row_device = np.searchsorted(all_devices, np.array(row_device_id)[order])
    row_time = EPOCH + np.array(row_hour)[order] * HOUR
    horizon_s, until = np.timedelta64(int(horizon.total_seconds()), "s"), np.datetime64(as_of.replace(tzinfo=None))
    labels = np.array(_reference(row_device, row_time, failures, horizon_s, until))
    kept = labels >= 0
    keys_of_failures = list(zip(failures.device.tolist(), failures.time.tolist(), strict=True))
    assert len(set(keys_of_failures)) < len(keys_of_failures)  # the tie is among them
    assert 0 < kept.sum() < kept.size and (labels > 0).any()
    assert dataset.device_ids.tolist() == np.array(row_device_id)[order][kept].tolist()
    assert np.array_equal(dataset.window_ends, row_time[kept])
    expected = values[order][kept][:, [FEATURE_NAMES.index(name) for name in names]].astype(np.float32)
    assert dataset.feature_names == names
    assert np.array_equal(dataset.values, expected, equal_nan=True)
    assert dataset.labels.tolist() == labels[kept].tolist()
    assert store.load_dataset(dataset.record.dataset_id).record.content_hash == dataset.record.content_hash
