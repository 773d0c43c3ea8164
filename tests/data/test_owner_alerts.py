"""The ``alerts`` owner and the counting queries the inbox, the demo and the metrics read, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import alerts, dead_letters, features, fleet, predictions
from cloud.data.alerts import ACKNOWLEDGED, OPEN, RESOLVED


def _alert(fingerprint: str) -> dict:
    return {
        "fingerprint": fingerprint,
        "kind": "training_failed",
        "severity": "warning",
        "subject": "run",
        "summary": "boom",
        "labels_json": "{}",
        "started_at": "2026-12-01T00:00:00.000000Z",
    }


def test_alerts_are_found_by_fingerprint_moved_once_and_paged_newest_first(owner_connection: Connection) -> None:
    ids = [alerts.add(owner_connection, _alert(f"f{n}")) for n in range(5)]
    assert alerts.known_fingerprints(owner_connection, ["f1", "f9"]) == {"f1"}

    assert alerts.move(owner_connection, ids[0], ACKNOWLEDGED, "key:a", "t1", (OPEN,)) is True
    assert alerts.move(owner_connection, ids[0], ACKNOWLEDGED, "key:b", "t2", (OPEN,)) is False
    assert alerts.move(owner_connection, ids[0], RESOLVED, "key:c", "t3", (OPEN, ACKNOWLEDGED)) is True
    row = alerts.find(owner_connection, ids[0])
    assert (row["acknowledged_by"], row["resolved_by"], row["state"]) == ("key:a", "key:c", RESOLVED)

    assert [r["id"] for r in alerts.page(owner_connection, None, None, 2)] == ids[:-3:-1]
    assert [r["id"] for r in alerts.page(owner_connection, OPEN, ids[3], 10)] == ids[2:0:-1]
    assert alerts.counts_by_state(owner_connection) == {OPEN: 4, RESOLVED: 1}
    assert [r["id"] for r in alerts.unresolved_of_kinds(owner_connection, ["training_failed"])] == ids[1:]


def test_undelivered_alerts_stay_due_until_the_webhook_takes_their_state(owner_connection: Connection) -> None:
    first, second = (alerts.add(owner_connection, _alert(f"d{n}")) for n in range(2))
    alerts.delivery_failed(owner_connection, [first], "ConnectError: refused")
    assert [r["id"] for r in alerts.undelivered(owner_connection, 10)] == [first, second]
    assert alerts.find(owner_connection, first)["notify_attempts"] == 1

    alerts.delivered(owner_connection, first, OPEN)
    assert [r["id"] for r in alerts.undelivered(owner_connection, 10)] == [second]
    alerts.move(owner_connection, first, RESOLVED, "key:a", "t", (OPEN,))
    assert [r["id"] for r in alerts.undelivered(owner_connection, 10)] == [first, second]


def _status(gateway_id: str, last_seen: str, online: int) -> tuple:
    return (gateway_id, last_seen, last_seen, online, "0.1.0", 1, '{"online": true}')


def test_gateways_are_counted_by_state_and_the_silent_ones_named(owner_connection: Connection) -> None:
    fleet.record_statuses(
        owner_connection,
        [
            _status("gw-on", "2026-12-07T10:00:00.000000Z", 1),
            _status("gw-stale", "2026-12-07T08:00:00.000000Z", 1),
            _status("gw-off", "2026-12-07T09:30:00.000000Z", 0),
            _status("gw-ancient", "2026-10-01T00:00:00.000000Z", 1),
        ],
    )
    states = fleet.gateway_states(owner_connection, "2026-12-07T09:00:00.000000Z")
    assert states == {"online": 1, "offline": 1, "stale": 2}

    silent = fleet.gateways_silent(owner_connection, "2026-12-01T00:00:00.000000Z", "2026-12-07T09:45:00.000000Z", 10)
    assert [row["gateway_id"] for row in silent] == ["gw-stale", "gw-off"]


def test_what_the_demo_counts(owner_connection: Connection) -> None:
    def prediction(n: int, gateway: str, version: str, made_at: str) -> tuple:
        return (
            f"p{n}",
            "",
            f"dev-{n}",
            "t",
            "failure",
            "component_failure",
            version,
            "{}",
            1.0,
            made_at,
            made_at,
            gateway,
            f"m{n}",
        )

    predictions.add_predictions(
        owner_connection,
        [
            prediction(1, "gw-1", "1", "2026-12-01T00:00:00.000000Z"),
            prediction(2, "gw-1", "2", "2026-12-02T00:00:00.000000Z"),
            prediction(3, "gw-2", "2", "2026-12-03T00:00:00.000000Z"),
        ],
    )
    assert sorted(tuple(row) for row in predictions.counts_by_version(owner_connection)) == [
        ("component_failure", "1", 1),
        ("component_failure", "2", 2),
    ]
    assert predictions.counts_by_gateway(owner_connection) == {"gw-1": 2, "gw-2": 1}
    assert predictions.newest_device_predicted(owner_connection, "failure") == "dev-3"
    assert predictions.newest_device_predicted(owner_connection, "usage") is None
    assert features.count_rows(owner_connection) == 0
    assert dead_letters.count(owner_connection) == 0
    event = ("m9", "gw-1", "reject", "component_failure", "2", 3, "model.golden", "mismatch", "t", None)
    fleet.add_events(owner_connection, [event])
    assert fleet.count_events(owner_connection, "reject") == 1
    assert fleet.count_events(owner_connection, "commit") == 0
