"""Day partitions and retention in the ``features`` and ``predictions`` owners, on SQLite and PostgreSQL: partitions
made ahead take the rows waiting in the default partition, duplicates are still ignored, old partitions drop,
old rows go in batches, and predictions an outcome or a rating names stay."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Connection, func, select, text

from cloud.data import features, predictions
from cloud.data.partitions import day_partition, default_partition

DAY = date(2026, 11, 2)


def _at(day: date, hour: int = 6) -> str:
    return f"{day.isoformat()}T{hour:02d}:00:00.000000Z"


def _feature(device: str, day: date, hour: int = 6) -> tuple:
    return (device, _at(day, hour), "v1", b"\x00" * 8, f"msg-{device}-{day}-{hour}")


def _prediction(prediction_id: str, day: date) -> tuple:
    model = ("component_failure", "component_failure", "1", "{}", 1.0)
    return (prediction_id, "champion", "wh-1", "tank-50", *model, _at(day), _at(day), "gw-1", f"msg-{prediction_id}")


def _rows_in(connection: Connection, name: str) -> int:
    return connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()


def _stored(connection: Connection, table) -> int:
    return connection.execute(select(func.count()).select_from(table)).scalar_one()


def test_a_new_day_partition_takes_the_rows_waiting_in_the_default_one(owner_connection: Connection) -> None:
    features.add_feature_rows(owner_connection, [_feature("wh-1", DAY), _feature("wh-2", DAY, 23)])
    predictions.add_predictions(owner_connection, [_prediction("p-1", DAY)])

    made = features.ensure_partitions(owner_connection, [DAY, DAY + timedelta(days=1)])
    made += predictions.ensure_partitions(owner_connection, [DAY])
    again = features.ensure_partitions(owner_connection, [DAY]) + predictions.ensure_partitions(owner_connection, [DAY])

    assert _stored(owner_connection, features.features) == 2
    assert _stored(owner_connection, predictions.predictions) == 1
    assert again == []
    if owner_connection.dialect.name == "sqlite":
        assert made == []
        return
    assert made == [
        day_partition("features", DAY),
        day_partition("features", DAY + timedelta(days=1)),
        day_partition("predictions", DAY),
    ]
    assert _rows_in(owner_connection, day_partition("features", DAY)) == 2
    assert _rows_in(owner_connection, default_partition("features")) == 0
    assert _rows_in(owner_connection, day_partition("predictions", DAY)) == 1
    assert _rows_in(owner_connection, default_partition("predictions")) == 0


def test_rows_sent_again_are_ignored_in_a_day_partition(owner_connection: Connection) -> None:
    features.ensure_partitions(owner_connection, [DAY])
    predictions.ensure_partitions(owner_connection, [DAY])

    first = features.add_feature_rows(owner_connection, [_feature("wh-1", DAY)])
    again = features.add_feature_rows(owner_connection, [_feature("wh-1", DAY), _feature("wh-2", DAY)])
    predictions.add_predictions(owner_connection, [_prediction("p-1", DAY)])
    predictions.add_predictions(owner_connection, [_prediction("p-1", DAY), _prediction("p-2", DAY)])

    assert (first, again) == (1, 1)
    assert _stored(owner_connection, features.features) == 2
    assert _stored(owner_connection, predictions.predictions) == 2


def test_old_day_partitions_drop_and_named_predictions_stay(owner_connection: Connection) -> None:
    days = [DAY + timedelta(days=n) for n in range(4)]
    cutoff = days[2]
    features.ensure_partitions(owner_connection, days)
    predictions.ensure_partitions(owner_connection, days)
    features.add_feature_rows(owner_connection, [_feature(f"wh-{n}", day) for n, day in enumerate(days)])
    predictions.add_predictions(owner_connection, [_prediction(f"p-{n}", day) for n, day in enumerate(days)])
    predictions.add_outcomes(owner_connection, [("o-1", "wh-1", "technician", _at(cutoff), "p-0", *(None,) * 7)])
    predictions.add_feedback_once(owner_connection, {"feedback_id": "f-1", "prediction_id": "p-1", "rating": 2})

    to_drop = features.partitions_before(owner_connection, cutoff)
    counted = predictions.count_older(owner_connection, cutoff)
    dropped = [predictions.drop_partition(owner_connection, day) for day in to_drop]
    features_dropped = [features.drop_partition(owner_connection, day) for day in to_drop]

    assert counted == (0, 2)
    if owner_connection.dialect.name == "sqlite":
        assert to_drop == []
        return
    assert to_drop == days[:2]
    assert dropped == [(1, 1), (1, 1)]
    assert features_dropped == [(1, 0), (1, 0)]
    assert features.partitions_before(owner_connection, cutoff) == []
    assert sorted(owner_connection.execute(text("SELECT prediction_id FROM predictions_default")).scalars()) == [
        "p-0",
        "p-1",
    ]
    assert sorted(owner_connection.execute(select(features.features.c.device_id)).scalars()) == ["wh-2", "wh-3"]


def test_old_rows_go_in_batches_walking_the_key_once(owner_connection: Connection) -> None:
    old, cutoff = DAY, DAY + timedelta(days=3)
    rows = [_feature(f"wh-{n}", old, hour) for n in range(3) for hour in (1, 2)] + [_feature("wh-0", cutoff)]
    features.add_feature_rows(owner_connection, rows)
    made = [_prediction(f"p-{n}", old) for n in range(5)] + [_prediction("p-new", cutoff)]
    predictions.add_predictions(owner_connection, made)
    predictions.add_outcomes(owner_connection, [("o-1", "wh-1", "sensor", _at(cutoff), "p-3", *(None,) * 7)])

    def every_batch(owner) -> list[int]:
        deleted, keys = [], owner.older_keys(owner_connection, cutoff, None, 2)
        while keys:
            deleted.append(owner.delete_older(owner_connection, cutoff, keys))
            keys = owner.older_keys(owner_connection, cutoff, keys[-1], 2)
        return deleted

    assert features.count_older(owner_connection, cutoff) == (6, 0)
    assert predictions.count_older(owner_connection, cutoff) == (4, 1)
    assert every_batch(features) == [2, 2, 2]
    assert every_batch(predictions) == [2, 2]
    assert features.count_older(owner_connection, cutoff) == (0, 0)
    assert predictions.count_older(owner_connection, cutoff) == (0, 1)
    assert sorted(owner_connection.execute(select(predictions.predictions.c.prediction_id)).scalars()) == [
        "p-3",
        "p-new",
    ]
    assert _stored(owner_connection, features.features) == 1


def test_a_prediction_named_after_its_key_was_read_is_not_deleted(owner_connection: Connection) -> None:
    cutoff = DAY + timedelta(days=1)
    predictions.add_predictions(owner_connection, [_prediction("p-1", DAY), _prediction("p-2", DAY)])
    keys = predictions.older_keys(owner_connection, cutoff, None, 10)
    predictions.add_outcomes(owner_connection, [("o-1", "wh-1", "technician", _at(cutoff), "p-2", *(None,) * 7)])

    deleted = predictions.delete_older(owner_connection, cutoff, keys)

    assert keys == [("p-1", "champion"), ("p-2", "champion")]
    assert deleted == 1
    assert owner_connection.execute(select(predictions.predictions.c.prediction_id)).scalars().all() == ["p-2"]
