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

    assert director.document_counts(owner_connection) == {"pending": 1, "published": 1}
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
    assert director.document_counts(owner_connection) == {"pending": 2, "published": 0}


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


#: one gateway per deployment state of model "m" (its document, sequence 2, names version "2"), by the events it sent
#: about documents the cloud issued to it: "o-<gateway>" under sequence 1 (version "1"), "d-<gateway>" under 2
_EVERY_STATE = {
    "gw-pending": [],
    "gw-downloading": [("download", "d", "2", {})],
    "gw-installed": [("install", "d", "2", {})],  # an agent older than the download event
    "gw-probation": [("download", "d", "2", {}), ("activate", "d", "2", {})],
    "gw-committed": [("download", "d", "2", {}), ("activate", "d", "2", {}), ("commit", "d", "2", {})],
    "gw-rejected": [("reject", "d", "2", {"rule": "golden_vectors", "detail": "off by 0.2"})],
    "gw-rolled-back": [("activate", "d", "2", {}), ("rollback", "d", "1", {"detail": "probation failed"})],
    "gw-back-to-it": [("activate", "o", "1", {}), ("rollback", "o", "2", {"detail": "1 would not load"})],
    "gw-runs-another": [("activate", "o", "1", {}), ("commit", "o", "1", {})],
}


def _every_state(connection: Connection) -> None:
    events = []
    for gateway, sent in _EVERY_STATE.items():
        director.store_document(connection, gateway, 2, _document(gateway, 2, m="2", other="7"))
        director.record_issued(connection, f"o-{gateway}", gateway, 1, T0)
        director.record_issued(connection, f"d-{gateway}", gateway, 2, T1)
        for n, (kind, digest, version, fields) in enumerate(sent):
            event = _event(f"{gateway}-{n}", kind, _at(n + 2), f"{digest}-{gateway}", gateway_id=gateway)
            events.append(event | {"model_version": version, "director_sequence": None, "detail": "detail"} | fields)
    connection.execute(insert(fleet.gateway_events), events)


def _at(minute: int) -> str:
    return f"2026-01-01T00:0{minute}:00.000000Z"


def test_deployment_rows_give_every_state_its_events_for_the_fleet_a_page_and_a_model(
    owner_connection: Connection,
) -> None:
    _every_state(owner_connection)
    fields = ("downloading_at", "switch_kind", "switch_version", "switch_detail", "committed_at")
    fields += ("activated_version", "rejected_at", "rule", "reject_detail")
    rows = director.deployment_rows(owner_connection, [], None, None)
    found = {row["gateway_id"]: tuple(row[f] for f in fields) for row in rows if row["model_name"] == "m"}

    assert found == {
        "gw-pending": (None,) * 9,
        "gw-downloading": (_at(2), None, None, None, None, None, None, None, None),
        "gw-installed": (_at(2), None, None, None, None, None, None, None, None),
        "gw-probation": (_at(2), "activate", "2", "detail", None, "2", None, None, None),
        "gw-committed": (_at(2), "activate", "2", "detail", _at(4), "2", None, None, None),
        "gw-rejected": (None, None, None, None, None, None, _at(2), "golden_vectors", "off by 0.2"),
        "gw-rolled-back": (None, "rollback", "1", "probation failed", None, "2", None, None, None),
        "gw-back-to-it": (None, "rollback", "2", "1 would not load", None, "1", None, None, None),
        "gw-runs-another": (None, "activate", "1", "detail", None, "1", None, None, None),
    }
    assert [(row["gateway_id"], row["model_name"]) for row in rows] == sorted(
        (gateway, model) for gateway in _EVERY_STATE for model in ("m", "other")
    )
    page = ["gw-rolled-back", "gw-committed", "gw-pending"]
    assert director.deployment_rows(owner_connection, [], None, None, gateway_ids=page) == [
        row for row in rows if row["gateway_id"] in page
    ]
    assert director.deployment_rows(owner_connection, [], None, "m") == [
        row for row in rows if row["model_name"] == "m"
    ]
