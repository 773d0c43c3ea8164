"""The ``director`` owner's queries on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import Connection, insert

from cloud.data import director, fleet

T0 = "2026-01-01T00:00:00.000000Z"
T1 = "2026-01-01T00:01:00.000000Z"


def test_the_fleet_desired_state_is_merged_per_model(owner_connection: Connection) -> None:
    director.put_fleet_desired(owner_connection, {"b": '{"version": "1"}', "a": '{"version": "1"}'})
    director.put_fleet_desired(owner_connection, {"b": '{"version": "2"}'})
    director.put_fleet_desired(owner_connection, {})

    assert director.fleet_desired(owner_connection) == {"a": '{"version": "1"}', "b": '{"version": "2"}'}


def test_a_stored_document_replaces_the_last_and_waits_to_be_published(owner_connection: Connection) -> None:
    director.store_document(owner_connection, "gw-b", 1, "doc b1")
    director.store_document(owner_connection, "gw-a", 1, "doc a1")
    assert director.mark_published(owner_connection, "gw-a", 1, T0) is True
    director.store_document(owner_connection, "gw-b", 2, "doc b2")

    assert director.document_json(owner_connection, "gw-b") == "doc b2"
    assert director.document_json(owner_connection, "gw-x") is None
    assert director.directed_gateways(owner_connection) == ["gw-a", "gw-b"]
    assert director.unpublished_gateways(owner_connection) == ["gw-b"]
    assert [dict(row) for row in director.every_document(owner_connection)] == [
        {"gateway_id": "gw-a", "document_json": "doc a1"},
        {"gateway_id": "gw-b", "document_json": "doc b2"},
    ]
    assert director.mark_published(owner_connection, "gw-b", 1, T1) is False  # a newer one was issued meanwhile

    director.store_document(owner_connection, "gw-a", 2, "doc a2")  # published again as unpublished
    assert director.mark_published(owner_connection, "gw-a", 2, T1) is True
    director.mark_unpublished(owner_connection, {"gw-a"})
    director.mark_unpublished(owner_connection, set())
    assert director.unpublished_gateways(owner_connection) == ["gw-a", "gw-b"]


def test_an_issued_digest_is_kept_once(owner_connection: Connection) -> None:
    director.record_issued(owner_connection, "d1", "gw-a", 1, T0)
    director.record_issued(owner_connection, "d1", "gw-a", 1, T1)

    rows = owner_connection.execute(director.director_issued.select()).mappings().all()
    assert [(row["document_digest"], row["issued_at"]) for row in rows] == [("d1", T0)]


def test_failures_count_attempts_until_cleared(owner_connection: Connection) -> None:
    assert director.record_failure(owner_connection, "gw-b", '{"m": 1}', "full", T1) == 1
    assert director.record_failure(owner_connection, "gw-a", "{}", "locked", T0) == 1
    assert director.record_failure(owner_connection, "gw-a", '{"m": 2}', "still locked", T1) == 2

    assert director.owed_json(owner_connection, "gw-a") == '{"m": 2}'
    assert director.owed_json(owner_connection, "gw-x") is None
    assert [dict(row) for row in director.failures(owner_connection)] == [
        {"gateway_id": "gw-a", "reason": "still locked", "failed_at": T1, "attempts": 2},  # first failed at T0
        {"gateway_id": "gw-b", "reason": "full", "failed_at": T1, "attempts": 1},
    ]
    director.clear_failure(owner_connection, "gw-a")
    assert [row["gateway_id"] for row in director.failures(owner_connection)] == ["gw-b"]


def _document(gateway_id: str, sequence: int, **versions: str) -> str:
    models = {name: {"version": version} for name, version in versions.items()}
    return json.dumps({"signed": {"gateway_id": gateway_id, "issued_at": "2026-01-01T00:00:00Z", "models": models}})


def _event(msg_id: str, kind: str, at: str, digest: str | None, **fields: object) -> dict:
    event = {"msg_id": msg_id, "gateway_id": "gw-a", "kind": kind, "model_name": "m", "model_version": "2"}
    return event | {"director_sequence": 99, "sent_at": at, "document_digest": digest, "rule": None} | fields


def test_deployment_rows_count_only_events_about_documents_issued_to_the_gateway(owner_connection: Connection) -> None:
    owner_connection.execute(insert(fleet.gateways), [{"gateway_id": "gw-a", "director_sequence": 3}])
    director.store_document(owner_connection, "gw-a", 4, _document("gw-a", 4, m="2", n="1"))
    director.store_document(owner_connection, "gw-b", 1, _document("gw-b", 1, m="1"))
    director.record_issued(owner_connection, "issued", "gw-a", 4, T0)
    events = [
        _event("e1", "download", "2026-01-01T00:01:00Z", "issued"),  # reports sequence 99: issued as 4
        _event("e2", "activate", "2026-01-01T00:02:00Z", "issued"),
        _event("e3", "commit", "2026-01-01T00:03:00Z", "issued"),
        _event("e4", "rollback", "2026-01-01T00:04:00Z", "forged", model_version="1"),  # never issued: ignored
        _event("e5", "reject", "2026-01-01T00:05:00Z", None, director_sequence=4, rule="director.signature"),
    ]
    owner_connection.execute(insert(fleet.gateway_events), events)

    rows = director.deployment_rows(owner_connection, ["director.signature"], None, None)
    assert [(row["gateway_id"], row["model_name"], row["version"]) for row in rows] == [
        ("gw-a", "m", "2"),
        ("gw-a", "n", "1"),
        ("gw-b", "m", "1"),
    ]
    deployed = dict(rows[0])
    assert deployed["sequence"] == 4 and deployed["issued_at"] == "2026-01-01T00:00:00Z"
    assert deployed["downloading_at"] == "2026-01-01T00:01:00Z"
    assert (deployed["switch_kind"], deployed["switch_version"]) == ("activate", "2")
    assert deployed["committed_at"] == "2026-01-01T00:03:00Z"
    assert deployed["rejected_at"] is None and deployed["gateway_sequence"] == 3

    assert director.deployment_rows(owner_connection, [], None, None)[0]["rejected_at"] == "2026-01-01T00:05:00Z"
    only = director.deployment_rows(owner_connection, ["director.signature"], "gw-a", "n")
    assert [(row["gateway_id"], row["model_name"], row["switch_kind"]) for row in only] == [("gw-a", "n", None)]
