"""A database that stored non-finite outputs, latencies or values, or times without a four-digit year, before the
wire refused them, heals when opened: those rows move to dead letters and the views that failed on them answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cloud.crypto_fields import cipher_for_database
from cloud.data.connections import connection_of
from cloud.ingest.decode import Accepted
from cloud.ingest.store import write_batch
from cloud.monitoring.performance import ModelPerformanceMonitor, generate_performance_report
from cloud.storage import migrate
from shared.topics import Up
from tests.ingest.helpers import count, outcomes, predictions

# a file set back to a legacy step (SQLite's own history)
pytestmark = pytest.mark.sqlite_only

NOW = datetime.now(UTC)


def _stored_unvalidated(db, batch, channel: Up) -> None:
    """As ingest stored them before: the model's values, never checked against today's bounds."""
    write_batch(db, [Accepted(channel, batch)], [], NOW)


def _prediction(prediction_id: str, **update):
    batch = predictions(prediction_id=prediction_id)
    made = {"made_at": NOW - timedelta(days=1), **update}
    return batch.model_copy(update={"predictions": [batch.predictions[0].model_copy(update=made)]})


def test_rows_their_readers_fail_on_move_to_dead_letters_and_the_views_answer(db):
    _stored_unvalidated(db, _prediction("pred-good-01"), Up.PREDICTIONS)
    _stored_unvalidated(db, _prediction("pred-infinite", outputs={"heating_element": float("inf")}), Up.PREDICTIONS)
    _stored_unvalidated(db, _prediction("pred-not-a-number", outputs={"heating_element": float("nan")}), Up.PREDICTIONS)
    _stored_unvalidated(db, _prediction("pred-slow-forever", latency_ms=float("inf")), Up.PREDICTIONS)
    _stored_unvalidated(db, _prediction("pred-year-999"), Up.PREDICTIONS)
    db.execute("UPDATE predictions SET made_at = '999-01-01T00:00:00.000000Z' WHERE prediction_id = 'pred-year-999'")
    infinite = outcomes(outcome_id="outcome-inf")
    infinite = infinite.model_copy(
        update={"outcomes": [infinite.outcomes[0].model_copy(update={"value": -float("inf")})]}
    )
    _stored_unvalidated(db, infinite, Up.OUTCOMES)
    _stored_unvalidated(db, outcomes(outcome_id="outcome-good"), Up.OUTCOMES)
    db.conn.commit()

    db.execute("DELETE FROM schema_migrations WHERE version = 18")
    db.conn.commit()
    migrate(db)

    assert [row["prediction_id"] for row in db["predictions"].rows] == ["pred-good-01"]
    assert [row["outcome_id"] for row in db["outcomes"].rows] == ["outcome-good"]
    letters = list(db["dead_letters"].rows)
    assert sorted(row["topic"] for row in letters) == ["migration/outcomes"] + ["migration/predictions"] * 4
    key = {"migration/predictions": "prediction_id", "migration/outcomes": "outcome_id"}
    decrypt = cipher_for_database(connection_of(db)).decrypt_bytes  # dead letters rest encrypted (cloud.dead_letters)
    moved = {json.loads(decrypt(row["payload"]))[key[row["topic"]]] for row in letters}
    assert moved == {"pred-infinite", "pred-not-a-number", "pred-slow-forever", "pred-year-999", "outcome-inf"}
    assert all(row["reason"].startswith("invalid: ") for row in letters)
    assert count(db, "ingested_messages") == 7  # the messages were received: a redelivery stays a duplicate

    report = generate_performance_report(db, None, "last_month")
    assert report  # answered: it raised "malformed JSON" before
    ModelPerformanceMonitor(db).compute_metrics("component_failure", NOW - timedelta(days=30), NOW)
