"""The ``features`` owner's queries, and the labels the feature store reads through ``predictions``, on SQLite and
PostgreSQL."""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import Connection

from cloud.data import features, fleet, predictions

W = [f"2026-03-01T{hour:02d}:00:00.000000Z" for hour in range(6)]


def _blob(*values: float) -> bytes:
    return np.array(values, dtype="<f4").tobytes()


def _stored(connection: Connection) -> None:
    """Two devices at windows 0..3 of fs1 (h2 missing at window 2), one at window 1 of fs2."""
    features.add_feature_sets(connection, {"fs1": ["a", "b"], "fs2": ["c"]})
    rows = [(device, W[w], "fs1", _blob(w, 10 * w), "m") for w in range(4) for device in ("h1", "h2")]
    rows.remove(("h2", W[2], "fs1", _blob(2, 20), "m"))
    assert features.add_feature_rows(connection, rows) == 7
    features.add_feature_rows(connection, [("h1", W[1], "fs2", _blob(5), None)])


def test_feature_sets_keep_the_names_first_recorded(owner_connection: Connection) -> None:
    features.add_feature_sets(owner_connection, {"fs2": ["x"], "fs1": ["a", "b"]})
    features.add_feature_sets(owner_connection, {"fs1": ["changed"]})

    assert features.feature_set_names(owner_connection, "fs1") == ["a", "b"]
    assert features.feature_set_names(owner_connection, "nosuch") is None
    assert features.every_feature_set(owner_connection) == {"fs1": ["a", "b"], "fs2": ["x"]}


def test_rows_stored_again_are_kept_and_not_counted(owner_connection: Connection) -> None:
    _stored(owner_connection)

    assert features.add_feature_rows(owner_connection, [("h1", W[0], "fs1", _blob(9, 9), "again")]) == 0
    rows = features.every_row(owner_connection, "fs1")
    assert [(row[0], row[1]) for row in rows[:3]] == [("h1", W[0]), ("h2", W[0]), ("h1", W[1])]
    assert bytes(rows[0][2]) == _blob(0, 0)


def test_a_message_of_packed_rows_is_cut_into_its_rows(owner_connection: Connection) -> None:
    keys = json.dumps([["h1", W[0]], ["h2", W[0]], ["h3", W[1]]]).encode()
    packed = _blob(1, 2) + _blob(3, 4) + _blob(5, 6)
    features.add_packed_rows(owner_connection, [("fs1", packed, 8, "m1", keys)])
    features.add_packed_rows(owner_connection, [("fs1", _blob(7, 7) * 3, 8, "m2", keys)])  # the same keys: kept

    rows = features.every_row(owner_connection, "fs1")
    assert [(row[0], row[1], bytes(row[2])) for row in rows] == [
        ("h1", W[0], _blob(1, 2)),
        ("h2", W[0], _blob(3, 4)),
        ("h3", W[1], _blob(5, 6)),
    ]


def test_one_device_s_rows_are_read_by_window(owner_connection: Connection) -> None:
    _stored(owner_connection)

    rows = features.device_rows(owner_connection, "h2", "fs1", W[1], "~")
    assert [(row[0], bytes(row[1])) for row in rows] == [(W[1], _blob(1, 10)), (W[3], _blob(3, 30))]
    assert features.device_rows(owner_connection, "h2", "fs1", W[4], "~") == []

    newest = features.newest_windows(owner_connection, "h2", "fs1", W[3], 2)  # before W[3]: W[2] (no row), W[1]
    assert [(row[0], None if row[1] is None else bytes(row[1])) for row in newest] == [
        (W[2], None),
        (W[1], _blob(1, 10)),
    ]


def test_the_window_span_covers_every_feature_set(owner_connection: Connection) -> None:
    assert features.window_span(owner_connection) == (None, None)
    _stored(owner_connection)
    features.add_feature_rows(owner_connection, [("h1", W[5], "fs2", _blob(1), None)])

    assert features.window_span(owner_connection) == (W[0], W[5])


def _cut(blob: bytes, ends: bytes, ids: bytes) -> list[tuple[str, str, bytes]]:
    """(window end, device, blob) of each row of a chunk, in key order (the columns promise row i at one place in
    each, not an order)."""
    size, width = len(_blob(0, 0)), len(W[0])
    ends_of = [ends[i : i + width].decode() for i in range(0, len(ends), width)]
    blobs = [blob[i : i + size] for i in range(0, len(blob), size)]
    return sorted(zip(ends_of, ids.decode().split(" "), blobs, strict=True))


def test_rows_are_read_concatenated_a_chunk_after_a_key(owner_connection: Connection) -> None:
    _stored(owner_connection)
    fleet.record_devices_known(owner_connection, [("h1", "tank-50", W[0], W[3]), ("h2", "tank-80", W[0], W[3])])

    count, *columns = features.rows_concatenated(owner_connection, "fs1", W[1], W[4], None, ("", ""), limit=3)
    assert count == 3
    assert _cut(*columns) == [(W[1], "h1", _blob(1, 10)), (W[1], "h2", _blob(1, 10)), (W[2], "h1", _blob(2, 20))]

    count, *columns = features.rows_concatenated(owner_connection, "fs1", W[1], W[4], None, (W[2], "h1"), 3)
    assert count == 2
    assert _cut(*columns) == [(W[3], "h1", _blob(3, 30)), (W[3], "h2", _blob(3, 30))]

    count, *columns = features.rows_concatenated(owner_connection, "fs1", W[0], W[4], "tank-80", ("", ""), 10)
    assert count == 3 and [device for _, device, _ in _cut(*columns)] == ["h2", "h2", "h2"]
    assert features.rows_concatenated(owner_connection, "fs1", W[4], W[5], None, ("", ""), 10)[0] == 0


def test_a_dataset_record_is_found_by_its_id(owner_connection: Connection) -> None:
    row = {"dataset_id": "d1", "query_json": "{}", "row_count": 3, "content_hash": "ab", "created_at": W[0]}
    features.add_dataset(owner_connection, row)

    assert dict(features.find_dataset(owner_connection, "d1")) == row
    assert features.find_dataset(owner_connection, "d2") is None


def _outcome(outcome_id: str, **values: object) -> tuple:
    row = dict.fromkeys(predictions.OUTCOME)
    row.update({"outcome_id": outcome_id, "device_id": "h1", "observed_at": W[2], "received_at": W[2], **values})
    return tuple(row[column] for column in predictions.OUTCOME)


def test_failures_are_those_known_by_as_of_with_a_component(owner_connection: Connection) -> None:
    predictions.add_outcomes(
        owner_connection,
        [
            _outcome("o1", component="anode", result="failed"),
            _outcome("o2", component="anode", result="replaced", received_at=W[5]),  # learned of too late
            _outcome("o3", component=None, result="failed"),
            _outcome("o4", component="valve", result="ok"),
            _outcome("o5", component="valve", result="replaced", observed_at=W[0], received_at=None),
        ],
    )

    found = predictions.failures_known(owner_connection, ["failed", "replaced"], W[0], W[3])
    assert [tuple(row) for row in found] == [("h1", "valve", W[0]), ("h1", "anode", W[2])]


def test_failures_of_a_heater_at_one_time_come_in_component_order(owner_connection: Connection) -> None:
    made = [_outcome(f"o{i}", component=name, result="failed") for i, name in enumerate(("valve", "anode", "tank"))]
    predictions.add_outcomes(
        owner_connection, [*made, _outcome("o9", device_id="h0", component="tank", result="failed")]
    )

    found = predictions.failures_known(owner_connection, ["failed"], W[0], W[3])
    assert [(row[0], row[1]) for row in found] == [("h0", "tank"), ("h1", "anode"), ("h1", "tank"), ("h1", "valve")]


def test_measured_values_are_averaged_per_device_and_window_of_their_predictions(owner_connection: Connection) -> None:
    made = ("h1", "tank-50", "usage_pattern", "m", "1", "{}", 1.0, W[1], W[1], "gw1", "m1")
    predictions.add_predictions(owner_connection, [("p1", "champion", *made), ("p1", "challenger", *made)])
    predictions.add_predictions(owner_connection, [("p2", "champion", *made[:8], W[4], "gw1", "m2")])
    predictions.add_outcomes(
        owner_connection,
        [
            _outcome("o1", source="sensor", prediction_id="p1", value=40.0),
            _outcome("o2", source="sensor", prediction_id="p1", value=60.0),
            _outcome("o3", source="technician", prediction_id="p1", value=1.0),
            _outcome("o4", source="sensor", prediction_id="p2", value=5.0),  # its window is outside
        ],
    )

    found = predictions.measured_by_window(owner_connection, "sensor", W[0], W[3], W[3])
    assert [tuple(row) for row in found] == [("h1", W[1], 50.0)]
    assert predictions.made_span(owner_connection) == (W[1], W[1])
    assert predictions.made_span(owner_connection, "other") == (None, None)
