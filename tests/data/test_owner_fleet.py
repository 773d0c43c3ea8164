"""The ``fleet`` owner's queries on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection, insert

from cloud.data import fleet

T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T00:01:00.000000Z"
T2 = "2026-01-01T00:02:00.000000Z"


def _fleet(connection: Connection) -> None:
    connection.execute(
        insert(fleet.gateways),
        [
            {"gateway_id": "gw-b", "online": 1, "director_sequence": 7, "status_json": "{}"},
            {"gateway_id": "gw-a", "online": 0, "director_sequence": None, "status_json": None},
        ],
    )
    connection.execute(
        insert(fleet.devices),
        [
            {"device_id": "wh-2", "gateway_id": "gw-b", "device_type": "heater"},
            {"device_id": "wh-1", "gateway_id": "gw-b", "device_type": "heater"},
            {"device_id": "wh-3", "gateway_id": "gw-c", "device_type": "boiler"},
            {"device_id": "wh-4", "gateway_id": None, "device_type": "heater"},
        ],
    )


def test_gateways_and_their_devices(owner_connection: Connection) -> None:
    _fleet(owner_connection)

    assert fleet.gateway_ids(owner_connection) == ["gw-a", "gw-b"]
    assert fleet.reported_director_sequence(owner_connection, "gw-b") == 7
    assert fleet.reported_director_sequence(owner_connection, "gw-a") is None
    assert fleet.reported_director_sequence(owner_connection, "gw-x") is None
    counted = fleet.gateways_with_device_counts(owner_connection)
    assert [(row["gateway_id"], row["online"], row["devices"]) for row in counted] == [("gw-a", 0, 0), ("gw-b", 1, 2)]
    [one] = fleet.gateways_with_device_counts(owner_connection, "gw-b")
    assert (one["status_json"], one["devices"]) == ("{}", 2)
    assert fleet.gateways_with_device_counts(owner_connection, "gw-x") == []
    assert fleet.device_ids(owner_connection, "gw-b") == ["wh-1", "wh-2"]
    assert fleet.gateways_serving(owner_connection, ["heater"]) == ["gw-b"]
    assert fleet.gateways_serving(owner_connection, {"heater", "boiler"}) == ["gw-b", "gw-c"]
    assert fleet.gateways_serving(owner_connection, []) == []


def test_recent_events_newest_first(owner_connection: Connection) -> None:
    events = [
        {"msg_id": f"m{n}", "gateway_id": "gw-a", "kind": "install", "sent_at": at} for n, at in enumerate([T1, T0, T2])
    ]
    owner_connection.execute(
        insert(fleet.gateway_events), [*events, {"msg_id": "o", "gateway_id": "gw-b", "kind": "install", "sent_at": T2}]
    )

    assert [row["msg_id"] for row in fleet.recent_events(owner_connection, "gw-a", 2)] == ["m2", "m0"]
    assert fleet.recent_events(owner_connection, "gw-a", 0) == []


def _security_event(gateway_id: str, digest: str, last_seen_at: str, sightings: int = 1) -> dict:
    return {
        "gateway_id": gateway_id,
        "document_digest": digest,
        "kind": "reject",
        "first_seen_at": T0,
        "last_seen_at": last_seen_at,
        "sightings": sightings,
        "first_msg_id": f"{gateway_id}-{digest}",
    }


def test_security_events_are_listed_counted_and_claimed_once(owner_connection: Connection) -> None:
    owner_connection.execute(
        insert(fleet.security_events),
        [_security_event("gw-a", "d1", T0, 2), _security_event("gw-a", "d2", T2), _security_event("gw-b", "d1", T1)],
    )

    seen = fleet.security_events_seen(owner_connection, None, None, 10)
    assert [(row["gateway_id"], row["document_digest"]) for row in seen] == [
        ("gw-a", "d2"),
        ("gw-b", "d1"),
        ("gw-a", "d1"),
    ]
    assert "first_msg_id" not in seen[0]
    assert [row["document_digest"] for row in fleet.security_events_seen(owner_connection, "gw-a", T1, 10)] == ["d2"]
    assert len(fleet.security_events_seen(owner_connection, None, None, 1)) == 1
    assert [dict(row) for row in fleet.security_event_counts(owner_connection, None)] == [
        {"gateway_id": "gw-a", "documents": 2, "sightings": 3, "last_seen_at": T2},
        {"gateway_id": "gw-b", "documents": 1, "sightings": 1, "last_seen_at": T1},
    ]
    assert [row["gateway_id"] for row in fleet.security_event_counts(owner_connection, "gw-b")] == ["gw-b"]

    claimed = fleet.claim_unalerted_security_events(owner_connection, T2)
    assert sorted((row["gateway_id"], row["document_digest"], row["alerted_at"]) for row in claimed) == [
        ("gw-a", "d1", T2),
        ("gw-a", "d2", T2),
        ("gw-b", "d1", T2),
    ]
    assert fleet.claim_unalerted_security_events(owner_connection, T2) == []
