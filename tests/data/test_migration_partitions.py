"""Revision 0006 on the real PostgreSQL: a database at 0005 holding features and predictions comes out partitioned
by day with every row, and inserts, duplicates and outcomes behave as before."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
from alembic import command
from sqlalchemy import Connection, text

from cloud.data import features, predictions
from cloud.data.migrate import alembic_config
from cloud.data.migrations import HEAD

pytestmark = pytest.mark.postgres

FEATURES = [
    ("v1", "2026-11-01T23:00:00.000000Z", "wh-1", b"\x01\x02", "m-1"),
    ("v1", "2026-11-02T00:00:00.000000Z", "wh-1", b"\x03\x04", "m-2"),
    ("v1", "2026-11-02T00:00:00.000000Z", "wh-2", b"\x05\x06", None),
    ("v2", "2026-11-05T12:00:00.000000Z", "wh-1", b"\x07\x08", "m-3"),
    ("v1", "not a time", "wh-3", b"\x09", "m-4"),
]
PREDICTIONS = [
    ("p-1", "champion", "2026-11-01T06:00:00.000000Z"),
    ("p-1", "shadow", "2026-11-01T06:00:00.000000Z"),
    ("p-2", "champion", "2026-11-03T06:00:00.000000Z"),
    ("p-3", "champion", None),
]


def _at(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _everything(connection: Connection, table: str) -> list[tuple]:
    return sorted(tuple(row) for row in connection.execute(text(f"SELECT * FROM {table}")))


def _partitions(connection: Connection, table: str) -> list[str]:
    return sorted(
        connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = CAST(:t AS regclass)"
            ),
            {"t": table},
        ).scalars()
    )


def test_a_database_with_rows_comes_through_0006_partitioned_with_every_row(postgres_schema) -> None:
    engine = postgres_schema()
    with engine.begin() as connection:
        _at(connection, "0005")
        connection.execute(
            text("INSERT INTO features VALUES (:a, :b, :c, :d, :e)"),
            [dict(zip("abcde", r, strict=True)) for r in FEATURES],
        )
        connection.execute(
            text(
                "INSERT INTO predictions (prediction_id, arm, device_id, made_at, outputs_json, latency_ms)"
                " VALUES (:id, :arm, 'wh-1', :made_at, '{\"x\": 1}', 2.5)"
            ),
            [{"id": i, "arm": arm, "made_at": made_at} for i, arm, made_at in PREDICTIONS],
        )
        connection.execute(text("INSERT INTO outcomes (outcome_id, prediction_id) VALUES ('o-1', 'p-2')"))
        features_before, predictions_before = (
            _everything(connection, "features"),
            _everything(connection, "predictions"),
        )

    with engine.begin() as connection:
        _at(connection, "head")

    with engine.begin() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        assert _everything(connection, "features") == features_before
        epoch = "1970-01-01T00:00:00.000000Z"
        assert _everything(connection, "predictions") == sorted(
            row if row[9] else (*row[:9], epoch, *row[10:]) for row in predictions_before
        )
        assert _partitions(connection, "features") == [
            "features_default",
            "features_p20261101",
            "features_p20261102",
            "features_p20261105",
        ]
        assert _partitions(connection, "predictions") == [
            "predictions_default",
            "predictions_p20261101",
            "predictions_p20261103",
        ]
        assert connection.execute(text("SELECT device_id FROM features_default")).scalars().all() == ["wh-3"]
        assert connection.execute(text("SELECT count(*) FROM features_p20261102")).scalar() == 2

        again = features.add_feature_rows(connection, [("wh-1", FEATURES[1][1], "v1", b"\xff", "m-9")])
        new = features.add_feature_rows(connection, [("wh-9", FEATURES[1][1], "v1", b"\xff", "m-9")])
        row = ("p-1", "champion", "wh-1", None, None, None, None, "{}", 1.0, PREDICTIONS[0][2], None, None, "m")
        predictions.add_predictions(connection, [row, (*row[:1], "challenger", *row[2:])])
        assert (again, new) == (0, 1)
        assert connection.execute(text("SELECT count(*) FROM features_p20261102")).scalar() == 3
        assert connection.execute(text("SELECT count(*) FROM predictions_p20261101")).scalar() == 3
        assert [o["prediction_id"] for o in predictions.outcomes_of(connection, "p-2")] == ["p-2"]
        assert predictions.first_arm(connection, "p-2")["outputs_json"] == '{"x": 1}'


def test_0006_goes_back_down_with_every_row(postgres_schema) -> None:
    engine = postgres_schema()
    with engine.begin() as connection:
        _at(connection, "head")
        features.ensure_partitions(connection, [date(2026, 11, 2)])
        features.add_feature_rows(connection, [(r[2], r[1], r[0], r[3], r[4]) for r in FEATURES])
        before = _everything(connection, "features")

    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")

    with engine.begin() as connection:
        assert _everything(connection, "features") == before
        assert _partitions(connection, "features") == []


def test_two_callers_making_the_same_day_make_it_once(postgres_schema) -> None:
    """The second waits on the default partition's lock, then finds the day made: no duplicate table error."""
    first, second = postgres_schema(), postgres_schema()
    with first.begin() as connection:
        _at(connection, "head")
    day, found = date(2026, 11, 9), []
    with first.begin() as holding:
        made = features.ensure_partitions(holding, [day])
        waiting = threading.Thread(target=lambda: found.append(_ensure(second, day)))
        waiting.start()
        time.sleep(0.5)  # let it reach the lock; if it has not yet, it takes it after the commit
    waiting.join()

    assert made == ["features_p20261109"]
    assert found == [[]]


def _ensure(engine, day: date) -> list[str]:
    with engine.begin() as connection:
        return features.ensure_partitions(connection, [day])
