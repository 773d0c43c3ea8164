"""The ``fleet`` owner's reads for monitoring and experiments (devices' types, events per version) on SQLite and
PostgreSQL; with the other owners' small reads monitoring needs (features, dead letters, models)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, insert

from cloud.data import dead_letters, features, fleet, models
from cloud.data.times import iso

START = datetime(2026, 1, 31, tzinfo=UTC)


def _at(hours: float) -> str:
    return iso(START + timedelta(hours=hours))


def _event(msg_id: str, kind: str, sent_at: str, version: str = "2", model_name: str = "component_failure") -> dict:
    return {
        "msg_id": msg_id,
        "gateway_id": "gw-1",
        "kind": kind,
        "model_name": model_name,
        "model_version": version,
        "sent_at": sent_at,
    }


def test_devices_and_their_types(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(fleet.devices),
        [
            {"device_id": "wh-1", "gateway_id": "gw-1", "device_type": "tank-50"},
            {"device_id": "wh-2", "gateway_id": "gw-1", "device_type": "heat-pump-80"},
            {"device_id": "wh-3", "gateway_id": "gw-1", "device_type": ""},
            {"device_id": "wh-4", "gateway_id": "gw-1", "device_type": None},
            {"device_id": "wh-5", "gateway_id": "gw-2", "device_type": "tank-50"},
        ],
    )

    assert fleet.has_device(owner_connection, "wh-4") is True
    assert fleet.has_device(owner_connection, "wh-9") is False
    assert fleet.device_types_by_device(owner_connection) == {
        "wh-1": "tank-50",
        "wh-2": "heat-pump-80",
        "wh-3": "",
        "wh-5": "tank-50",
    }
    assert fleet.known_device_types(owner_connection) == ["heat-pump-80", "tank-50"]


def test_a_versions_events_are_counted_by_kind_in_the_period(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(fleet.gateway_events),
        [
            _event("e1", "reject", _at(1)),
            _event("e2", "reject", _at(2)),
            _event("e3", "health", _at(3)),
            _event("e4", "status", _at(3)),  # not a kind asked for
            _event("e5", "reject", _at(3), version="1"),
            _event("e6", "rollback", _at(9)),  # after the period
        ],
    )
    kinds = ["reject", "rollback", "health"]

    assert fleet.version_event_counts(owner_connection, "component_failure", "2", kinds, _at(0), _at(5)) == {
        "reject": 2,
        "health": 1,
    }
    assert fleet.version_event_counts(owner_connection, "component_failure", "2", kinds, _at(2), None) == {
        "reject": 1,
        "health": 1,
        "rollback": 1,
    }


def test_a_models_events_are_counted_per_version_window_and_kind(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(fleet.gateway_events),
        [
            _event("e1", "reject", _at(0)),
            _event("e2", "reject", _at(5.9)),
            _event("e3", "health", _at(6)),
            _event("e4", "reject", _at(30), version="1"),
            _event("e5", "reject", _at(48)),  # at the end: left out
            _event("e6", "reject", _at(1), model_name="usage_pattern"),
        ],
    )
    start_ms, six_hours = round(START.timestamp() * 1000), 6 * 3_600_000

    found = fleet.model_event_counts(owner_connection, "component_failure", _at(0), _at(48), start_ms, six_hours)
    assert [tuple(row) for row in found] == [("1", 5, "reject", 1), ("2", 0, "reject", 2), ("2", 1, "health", 1)]


def test_rows_of_other_feature_sets_in_a_window(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(features.feature_sets), [{"version": v, "names_json": "[]"} for v in ("fs-1", "fs-2", "fs-3")]
    )
    owner_connection.execute(
        insert(features.features),
        [
            {"feature_set_version": version, "window_end": _at(hours), "device_id": device, "values_f32": b""}
            for version, hours, device in (
                ("fs-1", 1, "wh-1"),
                ("fs-2", 1, "wh-1"),
                ("fs-2", 2, "wh-2"),
                ("fs-2", 9, "wh-1"),  # after the window
                ("fs-3", 0, "wh-1"),
            )
        ],
    )

    found = features.rows_of_other_sets(owner_connection, "fs-1", _at(0), _at(5))
    assert [tuple(row) for row in found] == [("fs-2", 2), ("fs-3", 1)]
    assert [tuple(row) for row in features.rows_of_other_sets(owner_connection, "fs-3", _at(5), _at(6))] == [
        ("fs-1", 0),
        ("fs-2", 0),
    ]


def test_dead_letters_received_in_a_period_are_counted(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(dead_letters.dead_letters),
        [{"topic": "t", "payload": b"x", "reason": "bad", "received_at": _at(hours)} for hours in (0, 1, 2)],
    )
    assert dead_letters.count_received(owner_connection, _at(0), _at(2)) == 2
    assert dead_letters.count_received(owner_connection, _at(3), _at(4)) == 0


def test_a_registered_models_prediction_type(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(models.models),
        {"model_name": "heaters", "model_version": "1", "prediction_type": "component_failure"},
    )
    assert models.prediction_type_of(owner_connection, "heaters") == "component_failure"
    assert models.prediction_type_of(owner_connection, "nosuch") is None
