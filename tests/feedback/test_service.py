"""PredictionFeedbackService on a real SQLite file: links, idempotency, validation and encryption at rest."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

from cloud.config import CloudConfig
from cloud.crypto_fields import KEY_ENV, KEY_FILE, FieldKeyError, cipher_for_keys_dir
from cloud.feedback import ActualOutcome, InvalidFeedback, PredictionFeedbackService, UnknownPrediction
from shared.messages import Component, FeedbackSource, OutcomeResult, Prediction
from tests.api import seed
from tests.postgres_run import sqlite_files
from tests.rows import count, rows_of

FAILED = ActualOutcome(component=Component.HEATING_ELEMENT, result=OutcomeResult.FAILED, notes="burnt lower element")


def _database_bytes(config: CloudConfig) -> bytes:
    """The database file and its WAL: everything SQLite keeps on disk."""
    return b"".join(p.read_bytes() for p in sqlite_files(config))


def test_outcome_is_linked_to_the_prediction_and_its_notes_are_encrypted(
    db: sqlite_utils.Database, config: CloudConfig, prediction: Prediction
) -> None:
    service = PredictionFeedbackService(db)

    recorded = service.record_prediction_outcome(prediction.prediction_id, FAILED, FeedbackSource.TECHNICIAN)

    row = rows_of(db, "outcomes", outcome_id=recorded.id)[0]
    assert recorded.created
    assert (row["prediction_id"], row["device_id"], row["gateway_id"]) == (prediction.prediction_id, "wh-1", "gw-001")
    assert (row["source"], row["component"], row["result"]) == ("technician", "heating_element", "failed")
    assert row["notes"].startswith("fernet:")
    assert b"burnt lower element" not in _database_bytes(config)
    [stored] = service.outcomes(prediction.prediction_id, decrypt=True)
    assert (stored.notes, stored.notes_redacted) == ("burnt lower element", False)
    [hidden] = service.outcomes(prediction.prediction_id, decrypt=False)
    assert (hidden.notes, hidden.notes_redacted) == (None, True)


def test_the_same_outcome_twice_is_stored_once_even_stamped_later(
    db: sqlite_utils.Database, prediction: Prediction
) -> None:
    service = PredictionFeedbackService(db)
    later = FAILED.model_copy(update={"observed_at": datetime.now(UTC) + timedelta(minutes=5)})

    first = service.record_prediction_outcome(prediction.prediction_id, FAILED, "technician")
    again = service.record_prediction_outcome(prediction.prediction_id, later, "technician")
    by_sensor = service.record_prediction_outcome(prediction.prediction_id, FAILED, "sensor")

    assert (first.created, again.created, again.id) == (True, False, first.id)
    assert by_sensor.created and by_sensor.id != first.id
    assert count(db, "outcomes") == 2


def test_a_callers_outcome_id_is_the_key_and_cannot_be_reused_for_another_prediction(
    db: sqlite_utils.Database, prediction: Prediction
) -> None:
    other = seed.prediction(db, "wh-1", minutes=5)
    service = PredictionFeedbackService(db)
    keyed = FAILED.model_copy(update={"outcome_id": "visit-000123"})

    assert service.record_prediction_outcome(prediction.prediction_id, keyed, "technician").id == "visit-000123"
    with pytest.raises(InvalidFeedback, match="another prediction"):
        service.record_prediction_outcome(other.prediction_id, keyed, "technician")


def test_unknown_prediction_is_a_clear_error(db: sqlite_utils.Database) -> None:
    service = PredictionFeedbackService(db)

    with pytest.raises(UnknownPrediction, match="unknown prediction 'nope-0000'"):
        service.record_prediction_outcome("nope-0000", FAILED, "user")
    with pytest.raises(UnknownPrediction):
        service.record_user_feedback("nope-0000", 3)
    assert count(db, "outcomes") == 0


@pytest.mark.parametrize("rating", [0, 6, -1, True, 2.5])
def test_ratings_outside_one_to_five_are_refused(db: sqlite_utils.Database, prediction: Prediction, rating) -> None:
    with pytest.raises(InvalidFeedback, match="1 to 5"):
        PredictionFeedbackService(db).record_user_feedback(prediction.prediction_id, rating)
    assert count(db, "feedback") == 0


def test_an_outcome_must_say_what_happened() -> None:
    with pytest.raises(ValueError, match="result or a value"):
        ActualOutcome(component=Component.SEDIMENT)


def test_feedback_comment_is_encrypted_and_a_duplicate_counts_once(
    db: sqlite_utils.Database, config: CloudConfig, prediction: Prediction
) -> None:
    service = PredictionFeedbackService(db)

    first = service.record_user_feedback(prediction.prediction_id, 4, "caught the leak early", "alice")
    again = service.record_user_feedback(prediction.prediction_id, 4, "caught the leak early", "alice")
    other = service.record_user_feedback(prediction.prediction_id, 4, "caught the leak early", "bob")

    assert (first.created, again.created, other.created) == (True, False, True)
    assert count(db, "feedback") == 2
    assert b"caught the leak early" not in _database_bytes(config)
    assert [f.comments for f in service.feedback(prediction.prediction_id, decrypt=True)] == [
        "caught the leak early"
    ] * 2


def test_key_file_is_created_private_once_and_the_env_key_wins(config: CloudConfig, monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    token = cipher_for_keys_dir(config.keys_dir).encrypt("secret")

    key_file = config.keys_dir / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert cipher_for_keys_dir(config.keys_dir).decrypt(token) == "secret"

    monkeypatch.setenv(KEY_ENV, "x" * 43 + "=")  # a well-formed Fernet key other than the file's
    with pytest.raises(FieldKeyError, match="does not decrypt"):
        cipher_for_keys_dir(config.keys_dir).decrypt(token)
