"""Datasets labelled for usage_pattern and anomaly over a real SQLite file: point in time, recorded, rebuilt."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest
import sqlite_utils
from click.testing import CliRunner

from cloud.errors import Refused
from cloud.feature_store import FeatureStore
from cloud.storage import iso
from iotsphere.cli import main
from shared.messages import PredictionType
from tests.feature_store.conftest import AS_OF, DAY, HORIZON, T0, add_outcome, vector

USAGE = PredictionType.USAGE_PATTERN


def _daily_rows(store: FeatureStore, device_id: str, days: int) -> None:
    for day in range(days):
        store.store_device_features(device_id, vector(float(day)), T0 + day * DAY)


def _measured(
    db: sqlite_utils.Database,
    device_id: str,
    window_end: datetime,
    litres: float,
    received_at: datetime,
    arm: str = "champion",
    prediction_id: str | None = None,
) -> None:
    """A usage prediction made from the row at ``window_end`` and the sensor outcome measuring its next 24 h."""
    prediction_id = prediction_id or f"p-{device_id}-{iso(window_end)}-{arm}"
    db["predictions"].insert(
        {
            "prediction_id": prediction_id,
            "arm": arm,
            "device_id": device_id,
            "prediction_type": USAGE.value,
            "model_name": USAGE.value,
            "model_version": "1",
            "outputs_json": "{}",
            "made_at": iso(window_end),
            "feature_window_end": iso(window_end),
        }
    )
    db["outcomes"].insert(
        {
            "outcome_id": f"o-{prediction_id}",
            "device_id": device_id,
            "source": "sensor",
            "observed_at": iso(window_end + DAY),
            "prediction_id": prediction_id,
            "value": litres,
            "received_at": iso(received_at),
        }
    )


def _litres_by_day(dataset, device_id: str) -> dict[int, float]:
    mine = dataset.device_ids == device_id
    days = (dataset.window_ends[mine] - np.datetime64(T0.replace(tzinfo=None), "s")) // np.timedelta64(1, "D")
    return {int(day): float(litres) for day, litres in zip(days, dataset.labels[mine], strict=True)}


def test_usage_labels_are_sensor_litres_known_by_as_of_joined_through_the_prediction(store, db):
    _daily_rows(store, "wh-a", 6)
    _daily_rows(store, "wh-b", 6)
    _measured(db, "wh-a", T0, 120.5, received_at=T0 + DAY)
    _measured(db, "wh-a", T0 + DAY, 80.0, received_at=T0 + 2 * DAY)
    _measured(db, "wh-a", T0 + DAY, 90.0, received_at=T0 + 2 * DAY, arm="challenger")  # same window, two arms
    _measured(db, "wh-b", T0 + 2 * DAY, 60.0, received_at=T0 + 3 * DAY)
    _measured(db, "wh-b", T0 + 3 * DAY, 70.0, received_at=T0 + 20 * DAY)  # reported late: unknown before then
    add_outcome(db, "wh-b", T0 + 4 * DAY, "sensor", "failed")  # a technician outcome labels no usage

    dataset = store.get_training_dataset(None, T0, T0 + 6 * DAY, as_of=T0 + 10 * DAY, prediction_type=USAGE)

    assert dataset.prediction_type == USAGE and dataset.labels.dtype == np.float64
    assert _litres_by_day(dataset, "wh-a") == {0: 120.5, 1: 85.0}
    assert _litres_by_day(dataset, "wh-b") == {2: 60.0}  # rows without a known measurement are left out
    assert dataset.values[dataset.device_ids == "wh-a"][:, 0].tolist() == [0.0, 1.0]  # labels sit on their rows
    later = store.get_training_dataset(None, T0, T0 + 6 * DAY, as_of=T0 + 21 * DAY, prediction_type=USAGE)
    assert _litres_by_day(later, "wh-b") == {2: 60.0, 3: 70.0}


def test_a_usage_dataset_is_recorded_with_its_type_and_rebuilt_unchanged(store, db):
    _daily_rows(store, "wh-a", 4)
    _measured(db, "wh-a", T0 + DAY, 100.0, received_at=T0 + 2 * DAY)
    _measured(db, "wh-a", T0 + 2 * DAY, 50.25, received_at=T0 + 3 * DAY)
    first = store.get_training_dataset(None, T0, T0 + 4 * DAY, as_of=AS_OF, prediction_type=USAGE)
    assert first.record.query["prediction_type"] == USAGE.value and first.record.row_count == 2

    again = store.load_dataset(first.record.dataset_id)
    assert again.prediction_type == USAGE and again.labels.tolist() == [100.0, 50.25]
    failure_labelled = store.get_training_dataset(None, T0, T0 + 4 * DAY, as_of=AS_OF)
    assert failure_labelled.record.content_hash != first.record.content_hash

    db.execute("UPDATE outcomes SET value = 50.5 WHERE value = 50.25")  # a float label rewritten underneath
    db.conn.commit()
    with pytest.raises(Refused, match="has changed since it was recorded"):
        store.load_dataset(first.record.dataset_id)


def test_an_anomaly_dataset_keeps_every_row_with_failure_labels_where_known(store, db):
    _daily_rows(store, "wh-a", 10)
    add_outcome(db, "wh-a", T0 + 4 * DAY + DAY / 2, "thermostat", "failed")
    as_of = T0 + 8 * DAY

    dataset = store.get_training_dataset(
        None, T0, T0 + 10 * DAY, horizon=HORIZON, as_of=as_of, prediction_type=PredictionType.ANOMALY
    )
    failures = store.get_training_dataset(None, T0, T0 + 10 * DAY, horizon=HORIZON, as_of=as_of)

    assert dataset.record.row_count == 10 and failures.record.row_count < 10
    labels = dict(zip(dataset.window_ends.tolist(), dataset.labels.tolist(), strict=True))
    assert [labels[t] for t in failures.window_ends.tolist()] == failures.labels.tolist()
    assert labels[np.datetime64(T0.replace(tzinfo=None) + 9 * DAY, "s").item()] == -1  # horizon not yet passed
    assert dataset.failures is not None and dataset.failures.device.tolist() == ["wh-a"]


def test_dataset_command_builds_a_usage_dataset(store, db, tmp_path):
    _daily_rows(store, "wh-a", 3)
    _measured(db, "wh-a", T0, 42.0, received_at=T0 + DAY)
    data_dir = tmp_path / "cloud"
    args = ["features", "dataset", "--start", "2026-01-01", "--end", "2026-01-04", "--as-of", "2026-02-01"]
    result = CliRunner().invoke(main, [*args, "--prediction-type", "usage_pattern", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert '"row_count": 1' in result.output and '"prediction_type": "usage_pattern"' in result.output
