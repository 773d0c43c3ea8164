"""Bad uplink messages are kept as dead letters with their reason and raw bytes; good ones around them are stored."""

from __future__ import annotations

import pytest

from shared.messages import MAX_PAYLOAD_BYTES
from shared.topics import Up, up_topic
from tests.ingest.helpers import count, features, plain_payload, status, wait_for
from tests.rows import rows_of

pytestmark = pytest.mark.mqtt


def test_each_kind_of_bad_message_is_dead_lettered_and_the_loop_goes_on(make_worker, publisher, db, config):
    worker = make_worker()
    worker.start()
    prefix = config.topic_prefix
    feature_topic = up_topic("gw1", Up.FEATURES, prefix)
    oversized = b'{"pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}'
    bad = {
        "malformed": (feature_topic, b'{"schema": 1, "msg_id": '),
        "invalid": (feature_topic, b'{"schema": 1, "gateway_id": "gw1"}'),
        "oversized": (feature_topic, oversized),
        "gateway-mismatch": (up_topic("gw2", Up.FEATURES, prefix), features(gateway="gw1", window=9).to_json()),
        "topic": (f"{prefix}/gw/gw1/up/firmware", status().to_json()),
    }
    publisher.send(features(window=0), Up.FEATURES)
    for window, (topic, payload) in enumerate(bad.values(), start=1):
        publisher.raw(topic, payload)
        publisher.send(features(window=window), Up.FEATURES)
    wait_for(lambda: worker.stats.stored + worker.stats.dead_lettered == 11, what="eleven messages handled")

    letters = {row["reason"].split(":")[0]: row for row in rows_of(db, "dead_letters")}
    assert sorted(letters) == sorted(bad)
    for kind, (topic, payload) in bad.items():
        assert (letters[kind]["topic"], plain_payload(db, letters[kind]["payload"])) == (topic, payload)
    assert "gw2" in letters["gateway-mismatch"]["reason"] and "gw1" in letters["gateway-mismatch"]["reason"]
    assert "gateway_id" not in letters["invalid"]["reason"]  # present: the missing fields are the ones named
    assert "feature_set_version" in letters["invalid"]["reason"]
    assert "firmware" in letters["topic"]["reason"]
    assert (worker.stats.dead_lettered, worker.stats.stored) == (5, 6)
    assert count(db, "features") == 6


def test_a_value_without_a_float32_form_is_dead_lettered_and_the_rest_stored(make_worker, publisher, db, config):
    worker = make_worker()
    worker.start()
    huge = features(window=1).model_copy(
        update={"rows": [features().rows[0].model_copy(update={"values": [1e39] * 3})]}
    )
    publisher.send(huge, Up.FEATURES)
    publisher.send(features(window=2), Up.FEATURES)
    wait_for(lambda: worker.stats.stored + worker.stats.dead_lettered == 2, what="both messages handled")

    [letter] = rows_of(db, "dead_letters")
    assert plain_payload(db, letter["payload"]) == huge.to_json()
    assert (
        letter["reason"].startswith("invalid: FeatureBatch: beyond float32") and "rows.0.values.0" in letter["reason"]
    )
    assert count(db, "features") == 1
