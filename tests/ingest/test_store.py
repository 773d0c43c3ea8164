"""``write_batch`` on a real SQLite file: one transaction, idempotent inside a batch and across batches."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from sqlalchemy.exc import IntegrityError

from cloud.ingest.decode import Accepted, decode
from cloud.ingest.feature_codec import read_features
from cloud.ingest.store import DeadLetter, write_batch
from shared.topics import Up, up_topic
from tests.ingest.helpers import count, features
from tests.rows import rows_of

NOW = datetime(2026, 3, 2, tzinfo=UTC)


def _accepted(*batches) -> list[Accepted]:
    """Through ``decode``, as the worker hands them over."""
    decoded = [decode(up_topic(b.gateway_id, Up.FEATURES, "t"), b.to_json(), "t") for b in batches]
    assert all(isinstance(d, Accepted) for d in decoded), decoded
    return decoded


def test_a_message_twice_in_one_batch_and_again_in_the_next_is_stored_once(db):
    message = features(devices=("h1", "h2"))
    first = write_batch(db, _accepted(message, message), [], NOW)
    again = write_batch(db, _accepted(message), [], NOW)
    assert (first.stored, first.duplicates, again.stored, again.duplicates) == (1, 1, 0, 1)
    assert (count(db, "features"), count(db, "ingested_messages")) == (2, 1)


def test_a_device_spans_the_windows_it_reported_in_any_order(db):
    write_batch(db, _accepted(features(window=10), features(window=3)), [], NOW)
    write_batch(db, _accepted(features(window=7)), [], NOW)
    device = rows_of(db, "devices", device_id="h1")[0]
    assert (device["first_seen"], device["last_seen"]) == ("2026-03-01T12:03:00.000000Z", "2026-03-01T12:10:00.000000Z")


@pytest.mark.sqlite_only  # a SQLite trigger refuses the write
def test_a_failed_write_leaves_nothing_behind_not_even_the_dead_letters(db):
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON features BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    letter = DeadLetter("t/gw/gw1/up/features", b"{", "malformed: EOF")
    with pytest.raises(IntegrityError):  # SQLAlchemy's, wrapping SQLite's
        write_batch(db, _accepted(features()), [letter], NOW)
    assert (count(db, "ingested_messages"), count(db, "dead_letters"), count(db, "feature_sets")) == (0, 0, 0)
    assert not db.conn.in_transaction


def test_one_row_and_many_row_messages_store_the_same_values(db):
    write_batch(db, _accepted(features(devices=("h1",)), features(devices=("h2", "h3"))), [], NOW)
    stored = read_features(db, "fs1")
    assert stored.device_ids == ["h1", "h2", "h3"]
    expected = np.array([[1.5, np.nan, 3.0]] * 3, dtype=np.float32)
    assert stored.values.tobytes() == expected.tobytes()


def test_a_features_message_naming_other_features_for_a_known_version_is_a_dead_letter(db):
    """Stored, its rows would have another width than the version's: every read of that device's features failed."""
    write_batch(db, _accepted(features(devices=("h1",))), [], NOW)
    other = features(devices=("h1",), window=1).model_copy(update={"feature_names": ["a", "b"]})
    other = other.model_copy(update={"rows": [other.rows[0].model_copy(update={"values": [1.0, 2.0]})]})
    same_batch = features(devices=("h2",), window=2).model_copy(update={"feature_set_version": "fs2"})
    clash = same_batch.model_copy(update={"feature_names": ["x"], "msg_id": "clash-0001", "rows": other.rows[:1]})
    clash = clash.model_copy(update={"rows": [clash.rows[0].model_copy(update={"values": [1.0]})]})

    result = write_batch(db, _accepted(other, same_batch, clash), [], NOW)

    assert (result.stored, result.duplicates, result.dead_lettered) == (1, 0, 2)
    reasons = [row["reason"] for row in rows_of(db, "dead_letters")]
    assert (
        all(r.startswith("invalid: feature set ") for r in reasons) and "'fs1'" in reasons[0] and "'fs2'" in reasons[1]
    )
    assert read_features(db, "fs1").values.shape == (1, 3)
    assert read_features(db, "fs2").values.shape == (1, 3)
