"""The queries the Fleet and Gateway pages read, on SQLite and PostgreSQL: keyset pages of gateways filtered by id
prefix, connection state (the stale ones off the (last_seen, online) index, in id order) and version served, or
among the gateways a deployment census named, and each source of a gateway's timeline paged by (time, key)."""

from __future__ import annotations

import json

from sqlalchemy import Connection

from cloud.data import director, fleet, predictions

STALE_BEFORE = "2026-12-07T09:00:00.000000Z"
RECENT, OLD = "2026-12-07T10:00:00.000000Z", "2026-12-07T08:00:00.000000Z"


def _status(gateway_id: str, last_seen: str, online: int, version: str) -> tuple:
    status = {"online": bool(online), "models": [{"model_name": "component_failure", "active_version": version}]}
    return (gateway_id, last_seen, last_seen, online, "0.1.0", 1, json.dumps(status))


def _fleet(connection: Connection) -> None:
    fleet.record_statuses(
        connection,
        [
            _status("gw-a1", "2026-12-07T10:00:00.000000Z", 1, "3"),
            _status("gw-a2", "2026-12-07T08:00:00.000000Z", 1, "3"),
            _status("gw-a3", "2026-12-07T10:00:00.000000Z", 0, "2"),
            _status("gw-b1", "2026-12-07T10:00:00.000000Z", 1, "2"),
            _status("gw-b2", "2026-12-07T10:00:00.000000Z", 1, "3"),
        ],
    )


def _ids(rows) -> list[str]:
    return [row["gateway_id"] for row in rows]


def test_gateways_are_paged_by_id_after_a_cursor_with_their_connection_state(owner_connection: Connection) -> None:
    _fleet(owner_connection)
    first = fleet.gateway_page(owner_connection, STALE_BEFORE, 2)
    assert _ids(first) == ["gw-a1", "gw-a2"]
    assert [row["state"] for row in first] == ["online", "stale"]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 2, after="gw-a2")) == ["gw-a3", "gw-b1"]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 2, after="gw-b2")) == []
    row = fleet.gateway_row(owner_connection, "gw-a3", STALE_BEFORE)
    assert row is not None and row["state"] == "offline"
    assert fleet.gateway_row(owner_connection, "gw-zz", STALE_BEFORE) is None


def test_gateways_are_filtered_by_prefix_state_and_version_served(owner_connection: Connection) -> None:
    _fleet(owner_connection)
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, prefix="gw-b")) == ["gw-b1", "gw-b2"]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, prefix="gw-a", after="gw-a1")) == [
        "gw-a2",
        "gw-a3",
    ]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, state="online")) == ["gw-a1", "gw-b1", "gw-b2"]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, state="stale")) == ["gw-a2"]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, version="2")) == ["gw-a3", "gw-b1"]
    both = fleet.gateway_page(owner_connection, STALE_BEFORE, 10, prefix="gw-a", state="online", version="3")
    assert _ids(both) == ["gw-a1"]


def test_devices_are_counted_for_the_gateways_named(owner_connection: Connection) -> None:
    seen = [
        ("wh-1", "gw-a1", "heater", "t", "t"),
        ("wh-2", "gw-a1", "heater", "t", "t"),
        ("wh-3", "gw-b1", "h", "t", "t"),
    ]
    fleet.record_devices_seen(owner_connection, seen)
    assert fleet.device_counts(owner_connection, ["gw-a1", "gw-a2"]) == {"gw-a1": 2}


def _event(msg_id: str, kind: str, sent_at: str, digest: str | None = None) -> tuple:
    return (msg_id, "gw-a1", kind, "component_failure", "3", 4, None, None, sent_at, digest)


def test_a_gateways_events_and_security_events_are_paged_newest_first_by_time_then_key(
    owner_connection: Connection,
) -> None:
    fleet.add_events(
        owner_connection,
        [
            _event("m1", "download", "2026-12-07T10:00:00Z"),
            _event("m2", "activate", "2026-12-07T10:01:00Z"),
            _event("m3", "commit", "2026-12-07T10:01:00Z"),
            _event("m4", "reject", "2026-12-07T10:02:00Z", digest="f" * 64),
            ("x1", "gw-other", "download", None, None, 1, None, None, "2026-12-07T11:00:00Z", None),
        ],
    )
    ids = [row["msg_id"] for row in fleet.events_before(owner_connection, "gw-a1", None, 3)]
    assert ids == ["m4", "m3", "m2"]
    after_m3 = fleet.events_before(owner_connection, "gw-a1", ("2026-12-07T10:01:00Z", "m3"), 10)
    assert [row["msg_id"] for row in after_m3] == ["m2", "m1"]
    at_that_time_too = fleet.events_before(owner_connection, "gw-a1", ("2026-12-07T10:01:00Z", None), 10)
    assert [row["msg_id"] for row in at_that_time_too] == ["m3", "m2", "m1"]

    [seen] = fleet.security_events_before(owner_connection, "gw-a1", None, 10)
    assert (seen["document_digest"], seen["first_seen_at"]) == ("f" * 64, "2026-12-07T10:02:00Z")
    assert fleet.security_events_before(owner_connection, "gw-a1", (seen["first_seen_at"], "f" * 64), 10) == []


def test_documents_issued_to_a_gateway_are_paged_newest_first(owner_connection: Connection) -> None:
    for sequence in (1, 2, 3):
        director.record_issued(owner_connection, f"d{sequence}", "gw-a1", sequence, f"2026-12-07T10:0{sequence}:00Z")
    director.record_issued(owner_connection, "dx", "gw-b1", 1, "2026-12-07T10:05:00Z")
    first = director.issued_before(owner_connection, "gw-a1", None, 2)
    assert [(row["document_digest"], row["sequence"]) for row in first] == [("d3", 3), ("d2", 2)]
    rest = director.issued_before(owner_connection, "gw-a1", (first[-1]["issued_at"], first[-1]["document_digest"]), 2)
    assert [row["document_digest"] for row in rest] == ["d1"]


def test_outcomes_of_a_gateways_devices_are_paged_newest_first(owner_connection: Connection) -> None:
    for n, gateway in enumerate(["gw-a1", "gw-a1", "gw-a1", "gw-b1"]):
        outcome = {
            "outcome_id": f"o{n}",
            "device_id": f"wh-{n}",
            "source": "technician",
            "observed_at": "2026-12-07T10:00:00Z" if n < 2 else "2026-12-07T11:00:00Z",
            "component": "anode",
            "result": "failed",
            "gateway_id": gateway,
            "received_at": "2026-12-07T12:00:00Z",
        }
        assert predictions.add_outcome_once(owner_connection, outcome)
    assert [row["outcome_id"] for row in predictions.outcomes_before(owner_connection, "gw-a1", None, 2)] == [
        "o2",
        "o1",
    ]
    rest = predictions.outcomes_before(owner_connection, "gw-a1", ("2026-12-07T10:00:00Z", "o1"), 2)
    assert [row["outcome_id"] for row in rest] == ["o0"]


def test_deployments_are_read_for_a_page_of_gateways_in_one_query(owner_connection: Connection) -> None:
    document = json.dumps({"signed": {"issued_at": "2026-12-07T10:00:00Z", "models": {"component_failure": {}}}})
    for gateway in ("gw-a1", "gw-a2", "gw-b1"):
        director.store_document(owner_connection, gateway, 1, document)
    rows = director.deployment_rows(owner_connection, [], None, None, gateway_ids=["gw-b1", "gw-a1"])
    assert [row["gateway_id"] for row in rows] == ["gw-a1", "gw-b1"]
    assert director.deployment_rows(owner_connection, [], None, None, gateway_ids=[]) == []


def _thirty(connection: Connection) -> None:
    """gw-00..gw-29: every third silent since before the threshold (gw-06 of them offline), gw-1x on version 2."""
    fleet.record_statuses(
        connection,
        [
            _status(f"gw-{n:02d}", OLD if n % 3 == 0 else RECENT, int(n != 6), "2" if 10 <= n < 20 else "3")
            for n in reversed(range(30))  # stored out of id order: the page must sort, not rely on insertion
        ],
    )


def _ids(rows) -> list[str]:
    return [row["gateway_id"] for row in rows]


def test_stale_gateways_are_paged_in_id_order_with_the_other_filters(owner_connection: Connection) -> None:
    _thirty(owner_connection)
    stale = [f"gw-{n:02d}" for n in range(0, 30, 3) if n != 6]  # gw-06: silent too, but its last status said offline
    page = fleet.gateway_page(owner_connection, STALE_BEFORE, 4, state="stale")
    assert _ids(page) == stale[:4] and {row["state"] for row in page} == {"stale"}
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 4, after="gw-09", state="stale")) == stale[3:7]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 30, prefix="gw-1", state="stale")) == [
        "gw-12",
        "gw-15",
        "gw-18",
    ]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 30, state="stale", version="3")) == [
        "gw-00",
        "gw-03",
        "gw-09",
        "gw-21",
        "gw-24",
        "gw-27",
    ]
    assert fleet.gateway_page(owner_connection, "2026-12-07T07:00:00.000000Z", 30, state="stale") == []


def test_a_page_among_named_gateways_keeps_id_order_and_every_filter(owner_connection: Connection) -> None:
    _thirty(owner_connection)
    named = ["gw-29", "gw-12", "gw-03", "gw-04", "gw-99"]  # gw-99 never reported
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, among=named)) == [
        "gw-03",
        "gw-04",
        "gw-12",
        "gw-29",
    ]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 2, among=named)) == ["gw-03", "gw-04"]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, among=named, state="stale")) == [
        "gw-03",
        "gw-12",
    ]
    assert _ids(fleet.gateway_page(owner_connection, STALE_BEFORE, 10, among=named, version="2")) == ["gw-12"]
    assert fleet.gateway_page(owner_connection, STALE_BEFORE, 10, among=[]) == []
