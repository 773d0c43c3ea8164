"""The ``ingest`` and ``dead_letters`` owners' queries, and the writes ingest makes through ``fleet`` and
``predictions``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import Connection, func, select

from cloud.data import dead_letters, fleet, ingest, predictions

AT = "2026-03-01T12:00:00.000000Z"
LATER = "2026-03-01T13:00:00.000000Z"


def test_a_message_is_known_once_recorded_and_recording_it_again_changes_nothing(owner_connection: Connection) -> None:
    ingest.record_messages(owner_connection, [("m1", "features", "gw1", AT), ("m2", "status", "gw2", AT)])
    ingest.record_messages(owner_connection, [("m1", "events", "gw9", LATER)])

    assert ingest.known_messages(owner_connection, {"m1", "m3"}) == {"m1"}
    assert ingest.known_messages(owner_connection, set()) == set()
    channel = select(ingest.ingested_messages.c.channel).where(ingest.ingested_messages.c.msg_id == "m1")
    assert owner_connection.execute(channel).scalar() == "features"


def test_the_probe_is_one_row_its_time_the_last_written(owner_connection: Connection) -> None:
    ingest.write_probe(owner_connection, AT)
    ingest.write_probe(owner_connection, LATER)

    assert owner_connection.execute(select(ingest.ingest_probe.c.written_at)).scalars().all() == [LATER]


def test_a_lease_is_taken_when_free_or_lapsed_renewed_by_its_holder_and_handed_back(
    owner_connection: Connection,
) -> None:
    assert ingest.take_lease(owner_connection, "a", "t/#", "a", now=100.0, lapses_at=160.0)
    assert not ingest.take_lease(owner_connection, "a", "t/#", "b", now=150.0, lapses_at=210.0)  # held
    assert not ingest.take_lease(owner_connection, "a", "other/#", "a", now=150.0, lapses_at=210.0)  # not its stream
    assert ingest.renew_lease(owner_connection, "a", "a", 200.0)
    assert not ingest.renew_lease(owner_connection, "a", "b", 300.0)

    assert ingest.take_lease(owner_connection, "a", "t/#", "b", now=201.0, lapses_at=261.0)  # lapsed: adopted
    assert tuple(ingest.find_lease(owner_connection, "a")) == ("a", "t/#", "b", 261.0)
    ingest.return_lease(owner_connection, "a", "b", 270.0)
    assert tuple(ingest.find_lease(owner_connection, "a")) == ("a", "t/#", "a", 270.0)
    assert ingest.find_lease(owner_connection, "nosuch") is None


def test_leases_are_live_or_lapsed_soonest_first_and_dropped_by_their_holder(owner_connection: Connection) -> None:
    for client, lapses_at in (("a", 50.0), ("b", 150.0), ("c", 120.0), ("d", 10.0)):
        ingest.take_lease(owner_connection, client, "t/#", client, now=0.0, lapses_at=lapses_at)
    ingest.take_lease(owner_connection, "x", "other/#", "x", now=0.0, lapses_at=500.0)

    assert [row.client_id for row in ingest.leases(owner_connection, "t/#", 100.0, lapsed=False)] == ["c", "b"]
    assert [row.client_id for row in ingest.leases(owner_connection, "t/#", 100.0, lapsed=True)] == ["d", "a"]
    assert not ingest.drop_lease(owner_connection, "a", "b")
    assert ingest.drop_lease(owner_connection, "a", "a")
    assert ingest.find_lease(owner_connection, "a") is None


def test_dead_letters_are_kept_and_listed_newest_first(owner_connection: Connection) -> None:
    dead_letters.add(owner_connection, [("t/1", b"\x00one", "invalid: 1", AT), ("t/2", b"two", "invalid: 2", LATER)])

    newest = dead_letters.newest(owner_connection, 1)
    assert [(row["topic"], bytes(row["payload"]), row["reason"]) for row in newest] == [("t/2", b"two", "invalid: 2")]
    assert [row["topic"] for row in dead_letters.newest(owner_connection, 10)] == ["t/2", "t/1"]


def test_a_device_seen_keeps_its_latest_gateway_and_the_span_of_its_data_times(owner_connection: Connection) -> None:
    fleet.record_devices_seen(owner_connection, [("h1", "gw1", "tank-50", AT, AT)])
    fleet.record_devices_seen(owner_connection, [("h1", "gw2", "tank-80", "2026-03-01T11:00:00.000000Z", LATER)])

    row = owner_connection.execute(select(fleet.devices).where(fleet.devices.c.device_id == "h1")).mappings().one()
    assert (row["gateway_id"], row["device_type"]) == ("gw2", "tank-80")
    assert (row["first_seen"], row["last_seen"]) == ("2026-03-01T11:00:00.000000Z", LATER)


def test_a_device_a_history_names_takes_a_type_only_where_none_is_known(owner_connection: Connection) -> None:
    fleet.record_devices_seen(owner_connection, [("h1", "gw1", "tank-50", AT, AT)])
    fleet.record_devices_known(
        owner_connection, [("h1", "other", "2026-02-01T00:00:00.000000Z", AT), ("h2", None, AT, AT)]
    )
    fleet.record_devices_known(owner_connection, [("h2", "tank-80", LATER, LATER)])

    rows = owner_connection.execute(select(fleet.devices).order_by(fleet.devices.c.device_id)).mappings().all()
    assert [(r["device_id"], r["gateway_id"], r["device_type"], r["first_seen"], r["last_seen"]) for r in rows] == [
        ("h1", "gw1", "tank-50", "2026-02-01T00:00:00.000000Z", AT),
        ("h2", None, "tank-80", AT, LATER),
    ]


def _gateway(connection: Connection, gateway_id: str) -> dict:
    return dict(
        connection.execute(select(fleet.gateways).where(fleet.gateways.c.gateway_id == gateway_id)).mappings().one()
    )


def test_an_offline_status_changes_only_whether_the_gateway_is_online(owner_connection: Connection) -> None:
    online = json.dumps({"online": True, "health": "ok", "models": ["m"]})
    fleet.record_statuses(owner_connection, [("gw1", AT, AT, 1, "1.2", 7, online)])
    fleet.record_statuses(owner_connection, [("gw1", LATER, LATER, 0, None, None, json.dumps({"online": False}))])

    row = _gateway(owner_connection, "gw1")
    assert (row["first_seen"], row["last_seen"], row["online"]) == (AT, LATER, 0)
    assert (row["agent_version"], row["director_sequence"]) == ("1.2", 7)
    assert json.loads(row["status_json"]) == {"online": False, "health": "offline", "models": ["m"]}

    fleet.record_statuses(owner_connection, [("gw1", LATER, LATER, 1, "1.3", 8, json.dumps({"online": True}))])
    assert (_gateway(owner_connection, "gw1")["agent_version"], _gateway(owner_connection, "gw1")["online"]) == (
        "1.3",
        1,
    )


def test_one_batch_with_several_statuses_of_a_gateway_ends_as_written_one_by_one(owner_connection: Connection) -> None:
    online = json.dumps({"online": True, "health": "ok", "models": ["m"]})
    batch = [
        ("gw1", AT, AT, 1, "1.2", 7, online),
        ("gw2", AT, AT, 1, "2.0", 1, online),
        ("gw1", LATER, LATER, 0, None, None, json.dumps({"online": False})),
    ]
    fleet.record_statuses(owner_connection, batch)

    row = _gateway(owner_connection, "gw1")
    assert (row["first_seen"], row["last_seen"], row["online"], row["agent_version"]) == (AT, LATER, 0, "1.2")
    assert json.loads(row["status_json"]) == {"online": False, "health": "offline", "models": ["m"]}
    assert _gateway(owner_connection, "gw2")["agent_version"] == "2.0"


def test_events_predictions_and_outcomes_stored_again_are_kept_as_first_stored(owner_connection: Connection) -> None:
    event = ("e1", "gw1", "health", None, None, None, None, "first", AT, None)
    fleet.add_events(owner_connection, [event, (*event[:7], "again", *event[8:])])
    prediction = ("p1", "champion", "h1", "tank-50", "anomaly", "m", "1", '{"score": 0.5}', 1.5, AT, AT, "gw1", "m1")
    predictions.add_predictions(owner_connection, [prediction, (*prediction[:7], '{"score": 0.9}', *prediction[8:])])
    outcome = ("o1", "h1", "sensor", AT, "p1", None, None, 40.0, None, None, "gw1", AT)

    assert predictions.add_outcomes(owner_connection, [outcome]) == 1
    assert predictions.add_outcomes(owner_connection, [outcome, ("o2", *outcome[1:])]) == 1
    detail = select(fleet.gateway_events.c.detail)
    assert owner_connection.execute(detail).scalars().all() == ["first"]
    outputs = select(predictions.predictions.c.outputs_json)
    assert owner_connection.execute(outputs).scalars().all() == ['{"score": 0.5}']
    assert owner_connection.execute(select(func.count()).select_from(predictions.outcomes)).scalar() == 2
