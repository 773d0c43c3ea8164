"""Nothing is lost across a restart, and nothing is acknowledged before it is stored."""

from __future__ import annotations

import threading
import time

import pytest

from shared.topics import Up
from tests.ingest.helpers import count, features, unique, wait_for
from tests.rows import rows_of

pytestmark = pytest.mark.mqtt

REFUSE_WRITES = (
    "CREATE TRIGGER refuse_writes BEFORE INSERT ON ingested_messages BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
)


def _publish_in_background(publisher, total: int) -> tuple[threading.Thread, list[int]]:
    sent = [0]

    def publish() -> None:
        for window in range(total):
            publisher.send(features(window=window), Up.FEATURES)
            sent[0] += 1
            time.sleep(0.002)

    thread = threading.Thread(target=publish)
    thread.start()
    return thread, sent


@pytest.mark.parametrize("mqtt5", [True, False], ids=["mqtt5", "mqtt311"])
def test_a_restart_mid_stream_loses_nothing_and_stores_nothing_twice(make_worker, publisher, db, mqtt5):
    total = 300
    client_id = unique("ingest")
    first = make_worker(client_id=client_id, batch_size=20, mqtt5=mqtt5)
    first.start()
    thread, sent = _publish_in_background(publisher, total)
    wait_for(lambda: first.stats.stored >= 30, what="the first worker storing some")
    first.stop()
    stopped_at = sent[0]
    thread.join()

    assert stopped_at < total, "the worker should have stopped while messages were still being published"
    assert first.stats.stored < total
    second = make_worker(client_id=client_id, batch_size=20, mqtt5=mqtt5)
    second.start()
    wait_for(lambda: count(db, "ingested_messages") == total, what=f"all {total} messages stored")
    assert count(db, "features") == total
    assert {row["window_end"][11:16] for row in rows_of(db, "features")} == {
        f"{12 + w // 60:02d}:{w % 60:02d}" for w in range(total)
    }


@pytest.mark.sqlite_only  # a SQLite trigger refuses the writes
def test_a_failed_commit_acknowledges_nothing_and_the_broker_delivers_again(make_worker, publisher, db):
    worker = make_worker()
    worker.start()
    db.execute(REFUSE_WRITES)
    for window in range(5):
        publisher.send(features(window=window), Up.FEATURES)
    wait_for(lambda: worker.stats.storage_errors >= 1, what="a failed commit")
    assert count(db, "features") == 0

    db.execute("DROP TRIGGER refuse_writes")
    wait_for(lambda: worker.stats.stored == 5, what="the redelivered messages stored")
    assert worker.stats.received > 5  # the same messages arrived again: only the broker had them
    assert (count(db, "features"), count(db, "ingested_messages")) == (5, 5)


@pytest.mark.sqlite_only  # a SQLite trigger refuses the writes
def test_messages_a_worker_could_not_store_go_to_the_next_worker_of_that_session(make_worker, publisher, db):
    client_id = unique("ingest")
    failing = make_worker(client_id=client_id)
    failing.start()
    db.execute(REFUSE_WRITES)
    for window in range(5):
        publisher.send(features(window=window), Up.FEATURES)
    wait_for(lambda: failing.stats.received >= 5, what="the failing worker receiving all five")
    failing.stop()
    assert failing.stats.stored == 0

    db.execute("DROP TRIGGER refuse_writes")
    healthy = make_worker(client_id=client_id)
    healthy.start()
    wait_for(lambda: healthy.stats.stored == 5, what="all five stored by the next worker")
    assert count(db, "features") == 5
