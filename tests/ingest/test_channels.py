"""Each uplink channel lands in its tables through the real broker, and the same data twice is stored once."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cloud.crypto_fields import cipher_for_database
from cloud.data.connections import connection_of
from cloud.ingest.feature_codec import read_features
from shared.topics import Up
from tests.ingest.helpers import count, event, features, outcomes, predictions, status, wait_for
from tests.rows import rows_of

pytestmark = pytest.mark.mqtt


def test_each_channel_is_stored(make_worker, publisher, db):
    worker = make_worker()
    worker.start()
    publisher.send(features(devices=("h1", "h2")), Up.FEATURES)
    publisher.send(predictions(), Up.PREDICTIONS)
    publisher.send(outcomes(), Up.OUTCOMES)
    publisher.send(status(), Up.STATUS)
    publisher.send(event(), Up.EVENTS)
    wait_for(lambda: worker.stats.stored == 5, what="five stored messages")

    stored = read_features(db, "fs1")
    assert stored.feature_names == ["temp_mean", "temp_slope", "power_mean"]
    assert (stored.device_ids, stored.window_ends) == (["h1", "h2"], ["2026-03-01T12:00:00.000000Z"] * 2)
    np.testing.assert_array_equal(stored.values, np.array([[1.5, np.nan, 3.0]] * 2, dtype=np.float32))
    assert json.loads(rows_of(db, "feature_sets", version="fs1")[0]["names_json"]) == [
        "temp_mean",
        "temp_slope",
        "power_mean",
    ]
    prediction = rows_of(db, "predictions", prediction_id="pred-0001", arm="champion")[0]
    assert prediction["gateway_id"] == "gw1"
    assert json.loads(prediction["outputs_json"]) == {"heating_element": 0.25}
    assert prediction["made_at"] == "2026-03-01T12:05:00.000000Z"
    assert prediction["feature_window_end"] == "2026-03-01T12:00:00.000000Z"
    outcome = rows_of(db, "outcomes", outcome_id="outcome-0001")[0]
    notes = cipher_for_database(connection_of(db)).decrypt(outcome["notes"])  # stored encrypted at rest
    assert (outcome["source"], outcome["prediction_id"], notes) == (
        "technician",
        "pred-0001",
        "element replaced",
    )
    gateway = rows_of(db, "gateways", gateway_id="gw1")[0]
    assert (gateway["online"], gateway["agent_version"], gateway["director_sequence"]) == (1, "1.2.0", 7)
    assert json.loads(gateway["status_json"])["agent_version"] == "1.2.0"
    [stored_event] = rows_of(db, "gateway_events")
    assert (stored_event["kind"], stored_event["rule"]) == ("reject", "director-expired")
    devices = {r["device_id"]: r for r in rows_of(db, "devices")}
    assert sorted(devices) == ["h1", "h2"]
    # h1 sent a feature window at 12:00 and a prediction at 12:05
    assert (devices["h1"]["first_seen"], devices["h1"]["last_seen"]) == (
        "2026-03-01T12:00:00.000000Z",
        "2026-03-01T12:05:00.000000Z",
    )
    assert count(db, "ingested_messages") == 5
    assert worker.stats.dead_lettered == 0


def test_the_last_status_received_wins_even_a_last_will_with_an_older_timestamp(make_worker, publisher, db):
    worker = make_worker()
    worker.start()
    will = status(online=False)  # made when the gateway connected, published by the broker when it vanished
    publisher.send(status(online=True), Up.STATUS)
    publisher.send(will, Up.STATUS)
    wait_for(lambda: worker.stats.stored == 2, what="two statuses")
    assert rows_of(db, "gateways", gateway_id="gw1")[0]["online"] == 0


def test_the_same_message_twice_and_the_same_rows_in_two_messages_are_stored_once(make_worker, publisher, db):
    worker = make_worker()
    worker.start()
    batch = features(devices=("h1", "h2"))
    publisher.send(batch, Up.FEATURES)
    publisher.send(batch, Up.FEATURES)  # a redelivery: same msg_id
    publisher.send(features(devices=("h2", "h3")), Up.FEATURES)  # a resend: new msg_id, h2's row again
    publisher.send(predictions(), Up.PREDICTIONS)
    publisher.send(predictions(), Up.PREDICTIONS)  # same prediction_id and arm, new msg_id
    publisher.send(outcomes(), Up.OUTCOMES)
    publisher.send(outcomes(), Up.OUTCOMES)
    repeated = event()
    publisher.send(repeated, Up.EVENTS)
    publisher.send(repeated, Up.EVENTS)
    wait_for(lambda: worker.stats.received == 9, what="nine messages")
    wait_for(lambda: worker.stats.stored + worker.stats.duplicates == 9, what="nine messages handled")

    assert worker.stats.duplicates == 2
    assert sorted((r["device_id"]) for r in rows_of(db, "features")) == ["h1", "h2", "h3"]
    assert (count(db, "predictions"), count(db, "outcomes"), count(db, "gateway_events")) == (1, 1, 1)
    assert count(db, "ingested_messages") == 7
