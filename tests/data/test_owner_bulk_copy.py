"""The owners' bulk writes round-trip every kind of value, skip rows stored before and stay in the caller's
transaction on both dialects: on PostgreSQL they go through COPY (``cloud.data.bulk``), and what they store must be
what SQLite stores."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pytest
from sqlalchemy import Column, Connection, Engine, LargeBinary, MetaData, Table, Text, delete, select, text
from sqlalchemy.exc import IntegrityError

from cloud.data import dead_letters, features, fleet, predictions
from cloud.data.bulk import BulkInsert

AT = "2026-03-01T06:00:00.123456Z"
#: text COPY escapes: tab, newline, backslash, what reads as NULL in COPY's text format, non-ASCII, quotes
AWKWARD = "Zürich\t\"née\"\n\\N \\ 温度 🚰 'x' \r end"


def _prediction(prediction_id: str, arm: str = "champion", **changed: object) -> tuple:
    row = dict(
        prediction_id=prediction_id,
        arm=arm,
        device_id="h1",
        device_type="tank-50",
        prediction_type="anomaly",
        model_name="m",
        model_version="1",
        outputs_json='{"score": 0.5, "label": "Überlauf", "note": "a\\tb\\n", "nested": {"x": [1, null]}}',
        latency_ms=1.5,
        made_at=AT,
        feature_window_end=AT,
        gateway_id="gw1",
        msg_id="m1",
    )
    row.update(changed)
    return tuple(row[column] for column in predictions.PREDICTION)


def _stored_predictions(connection: Connection) -> list[tuple]:
    columns = [predictions.predictions.c[name] for name in predictions.PREDICTION]
    query = select(*columns).order_by(predictions.predictions.c.prediction_id, predictions.predictions.c.arm)
    return [tuple(row) for row in connection.execute(query)]


def test_predictions_round_trip_nulls_json_times_floats_and_non_ascii(owner_connection: Connection) -> None:
    rows = [
        _prediction("p1"),
        _prediction("p2", device_type=None, model_version=None, latency_ms=None, feature_window_end=None, msg_id=None),
        _prediction(
            "p3", device_id=AWKWARD, outputs_json='{"text": "' + AWKWARD.encode("unicode_escape").decode() + '"}'
        ),
        _prediction("p4", latency_ms=1e-300, made_at="2026-12-31T23:59:59.999999Z", gateway_id=""),
        _prediction("p5", latency_ms=-0.0, model_name="NULL", device_id="\\N"),
        _prediction("p6", latency_ms=math.inf, model_name=" leading and trailing "),
    ]
    predictions.add_predictions(owner_connection, rows)

    assert _stored_predictions(owner_connection) == rows


def test_feature_rows_round_trip_any_bytes(owner_connection: Connection) -> None:
    blobs = [bytes(range(256)), b"\x00", b"\\N", b"\t\n\r\\", np.array([np.nan, -np.inf, 1.5], dtype="<f4").tobytes()]
    rows = [(f"h{i}", AT, "fs1", blob, AWKWARD if i % 2 else None) for i, blob in enumerate(blobs)]

    assert features.add_feature_rows(owner_connection, rows) == len(rows)

    query = select(features.features.c.device_id, features.features.c.values_f32, features.features.c.msg_id)
    stored = {device: (bytes(blob), msg_id) for device, blob, msg_id in owner_connection.execute(query)}
    assert stored == {device: (blob, msg_id) for device, _, _, blob, msg_id in rows}


def test_rows_stored_before_or_twice_in_a_batch_are_skipped_and_the_first_kept(owner_connection: Connection) -> None:
    assert features.add_feature_rows(owner_connection, [("h1", AT, "fs1", b"first", "m1")]) == 1
    again = [
        ("h2", AT, "fs1", b"new", "m2"),
        ("h1", AT, "fs1", b"stored before", "m2"),  # a gateway's resend in a new message
        ("h3", AT, "fs1", b"new, first in the batch", "m2"),
        ("h3", AT, "fs1", b"new, again in the batch", "m2"),
    ]

    assert features.add_feature_rows(owner_connection, again) == 2
    assert features.add_feature_rows(owner_connection, again) == 0

    query = select(features.features.c.device_id, features.features.c.values_f32).order_by("device_id")
    assert [(device, bytes(blob)) for device, blob in owner_connection.execute(query)] == [
        ("h1", b"first"),
        ("h2", b"new"),
        ("h3", b"new, first in the batch"),
    ]
    predictions.add_predictions(owner_connection, [_prediction("p1"), _prediction("p1", outputs_json="{}")])
    assert [row[7] for row in _stored_predictions(owner_connection)] == [_prediction("p1")[7]]


def test_a_bulk_write_rolls_back_with_the_callers_savepoint(owner_connection: Connection) -> None:
    features.add_feature_rows(owner_connection, [("h1", AT, "fs1", b"kept", "m1")])
    savepoint = owner_connection.begin_nested()
    assert features.add_feature_rows(owner_connection, [("h2", AT, "fs1", b"gone", "m2")]) == 1
    # the conflicting write takes the staged path: its temporary table goes with the rollback too
    assert (
        features.add_feature_rows(owner_connection, [("h1", AT, "fs1", b"x", "m3"), ("h3", AT, "fs1", b"y", "m3")]) == 1
    )
    savepoint.rollback()

    assert (
        features.add_feature_rows(owner_connection, [("h1", AT, "fs1", b"x", "m3"), ("h3", AT, "fs1", b"y", "m3")]) == 1
    )
    assert owner_connection.execute(select(features.features.c.device_id).order_by("device_id")).scalars().all() == [
        "h1",
        "h3",
    ]


def test_a_refused_row_raises_sqlalchemys_integrity_error(owner_connection: Connection) -> None:
    savepoint = owner_connection.begin_nested()
    with pytest.raises(IntegrityError):
        features.add_feature_rows(owner_connection, [("h1", AT, "fs1", b"ok", "m1"), ("h2", AT, "fs1", None, "m1")])
    savepoint.rollback()

    assert features.count_rows(owner_connection) == 0


def test_plain_inserts_copy_too(owner_connection: Connection) -> None:
    letters = [("t/1", b"\x00payload\\N", AWKWARD, AT), ("t/2", None, None, None)]
    dead_letters.add(owner_connection, letters)

    query = select(
        dead_letters.dead_letters.c.topic,
        dead_letters.dead_letters.c.payload,
        dead_letters.dead_letters.c.reason,
        dead_letters.dead_letters.c.received_at,
    ).order_by(dead_letters.dead_letters.c.id)
    stored = owner_connection.execute(query).all()
    assert [(topic, payload and bytes(payload), *rest) for topic, payload, *rest in stored] == letters


@pytest.mark.postgres
@pytest.mark.parametrize("isolation", ["commit as you go", "AUTOCOMMIT"])
def test_a_write_outside_a_transaction_is_stored(
    _owner_databases: dict[str, Callable[[], Engine]], isolation: str
) -> None:
    """The raw connection's COPY is the caller's: committed by its commit, or by itself in autocommit."""
    engine = _owner_databases["postgresql"]()
    options = {} if isolation == "commit as you go" else {"isolation_level": isolation}
    rows = [_prediction("outside"), _prediction("outside"), _prediction("outside", "challenger")]
    try:
        with engine.connect().execution_options(**options) as connection:
            predictions.add_predictions(connection, rows)
            connection.commit()
        with engine.connect() as connection:
            assert _stored_predictions(connection) == [rows[2], rows[0]]
    finally:
        with engine.begin() as connection:
            connection.execute(
                delete(predictions.predictions).where(predictions.predictions.c.prediction_id == "outside")
            )


@pytest.mark.postgres
def test_copy_routes_rows_into_a_partitioned_table_and_skips_stored_ones(postgres_schema) -> None:
    table = Table(
        "parts",
        MetaData(),
        Column("key", Text, primary_key=True),
        Column("window_end", Text, primary_key=True),
        Column("values_f32", LargeBinary, nullable=False),
        postgresql_partition_by="RANGE (window_end)",
    )
    bulk = BulkInsert(lambda insert, _: insert(table).on_conflict_do_nothing(), ("key", "window_end", "values_f32"))
    with postgres_schema().begin() as connection:
        table.create(connection)
        for name, start, end in (("parts_2025", "2025", "2026"), ("parts_2026", "2026", "2027")):
            connection.execute(text(f"CREATE TABLE {name} PARTITION OF parts FOR VALUES FROM ('{start}') TO ('{end}')"))
        rows = [("h1", "2025-06-01", b"a"), ("h1", "2026-06-01", b"b")]

        assert bulk.write(connection, rows) == 2
        assert bulk.write(connection, [*rows, ("h2", "2026-06-01", b"c"), ("h2", "2026-06-01", b"d")]) == 1

        partitions = select(text("tableoid::regclass::text"), table.c.key, table.c.values_f32).select_from(table)
        assert sorted((p, k, bytes(v)) for p, k, v in connection.execute(partitions)) == [
            ("parts_2025", "h1", b"a"),
            ("parts_2026", "h1", b"b"),
            ("parts_2026", "h2", b"c"),
        ]


def test_an_upsert_that_updates_is_staged_and_counts_rows_inserted_and_updated(owner_connection: Connection) -> None:
    seen = [("h1", "gw1", "Kessel-Ω", AT, AT), ("h2", None, None, AT, AT)]
    fleet.record_devices_seen(owner_connection, seen)
    fleet.record_devices_seen(owner_connection, [("h1", "gw2", "Kessel-Ω", "2026-01-01", "2026-12-31"), seen[1]])
    fleet.record_devices_known(owner_connection, [("h2", "tank-50", "2025-01-01", AT), ("h3", None, None, None)])

    columns = [fleet.devices.c[name] for name in fleet.DEVICE_SEEN]
    rows = owner_connection.execute(select(*columns).order_by(fleet.devices.c.device_id)).all()
    assert [tuple(row) for row in rows] == [
        ("h1", "gw2", "Kessel-Ω", "2026-01-01", "2026-12-31"),
        ("h2", None, "tank-50", "2025-01-01", AT),
        ("h3", None, None, None, None),
    ]


def test_packed_rows_round_trip_awkward_keys_and_any_bytes(owner_connection: Connection) -> None:
    """``add_packed_rows`` formats COPY's text itself on PostgreSQL: keys needing escapes and any bytes come back."""
    keys = [[AWKWARD, AT], ["\\N", AT], ["h\\x00", "2026-03-01T06:00:00Z"]]
    packed = bytes(range(256))[:24]  # three rows of 8 bytes, NUL and backslash among them
    features.add_packed_rows(owner_connection, [("fs\t1", packed, 8, None, json.dumps(keys).encode())])
    # the same keys again, raw UTF-8 as the ingest worker writes them: kept as first stored
    again = json.dumps(keys, ensure_ascii=False).encode()
    features.add_packed_rows(owner_connection, [("fs\t1", b"\xff" * 24, 8, AWKWARD, again)])

    query = select(
        features.features.c.device_id,
        features.features.c.window_end,
        features.features.c.values_f32,
        features.features.c.msg_id,
    ).where(features.features.c.feature_set_version == "fs\t1")
    stored = sorted((device, end, bytes(blob), msg_id) for device, end, blob, msg_id in owner_connection.execute(query))
    assert stored == sorted((device, end, packed[i * 8 : i * 8 + 8], None) for i, (device, end) in enumerate(keys))


def test_a_packed_row_without_a_device_is_refused(owner_connection: Connection) -> None:
    savepoint = owner_connection.begin_nested()
    with pytest.raises(IntegrityError):
        features.add_packed_rows(owner_connection, [("fs1", b"\x00" * 16, 8, "m1", b'[["h1", "t"], [null, "t"]]')])
    savepoint.rollback()

    assert features.count_rows(owner_connection) == 0
