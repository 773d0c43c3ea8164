"""PredictionFeedbackService: what actually happened after a prediction, and what people thought of it.

Outcomes go to the ``outcomes`` table that MQTT ingest also fills (gateways' technician and sensor outcomes),
linked to the prediction by ``prediction_id``; ratings go to ``feedback``. Notes and comments are encrypted at
rest (``cloud.crypto_fields``).

Idempotency keys, so a retried submission is stored once:
- outcome: the caller's ``outcome_id`` if it gives one (as gateways do), else a digest of
  (prediction_id, source, component, result, value): one finding per prediction, source and component.
  ``observed_at``, technician and notes are not part of it, so a retry stamped a moment later still matches.
- feedback: a keyed fingerprint of (prediction_id, rating, comments, submitter), so the same person sending the
  same rating and comment twice counts once, while the comment is never stored or hashed in the clear.

A stored outcome or rating is audited as ``actor`` in the same transaction (ids only: never notes or comments);
a retry that stores nothing records nothing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import sqlite_utils
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cloud.audit import AuditLog
from cloud.config import configured_actor
from cloud.crypto_fields import FieldCipher, cipher_for_database
from cloud.data import predictions as stored_predictions
from cloud.data.connections import connection_of, write_transaction
from cloud.errors import NotFound, Refused
from cloud.storage import iso
from shared.messages import Component, FeedbackSource, OutcomeResult, UtcDatetime, utc_now


class UnknownPrediction(NotFound, LookupError):
    """No prediction with this id has been ingested."""


class InvalidFeedback(Refused, ValueError):
    """A rating outside 1–5, an outcome that says nothing valid, or an outcome id already used for another
    prediction."""


class ActualOutcome(BaseModel):
    """What was found: a component's result (failure model) and/or a measured value (usage model)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    component: Component | None = None
    result: OutcomeResult | None = None
    #: measured quantity, e.g. litres drawn in the 24 h after a usage prediction
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    #: when it was observed; now if not given
    observed_at: UtcDatetime | None = None
    technician: str | None = Field(None, max_length=128)
    notes: str | None = Field(None, max_length=4000)
    #: the caller's idempotency key; by default one is derived from the finding
    outcome_id: str | None = Field(None, min_length=8, max_length=64)

    @model_validator(mode="after")
    def _says_something(self) -> ActualOutcome:
        if self.result is None and self.value is None:
            raise ValueError("an outcome needs a result or a value")
        return self


@dataclass(frozen=True)
class Recorded:
    """The stored row's id, and whether this call stored it (False: the same submission was there already)."""

    id: str
    created: bool


class StoredOutcome(BaseModel):
    outcome_id: str
    prediction_id: str
    device_id: str
    source: FeedbackSource
    observed_at: datetime
    component: Component | None
    result: OutcomeResult | None
    value: float | None
    technician: str | None
    #: decrypted for operators and admins only; None with ``notes_redacted`` for other readers
    notes: str | None
    notes_redacted: bool
    received_at: datetime


class StoredFeedback(BaseModel):
    feedback_id: str
    prediction_id: str
    rating: int
    #: decrypted for operators and admins only; None with ``comments_redacted`` for other readers
    comments: str | None
    comments_redacted: bool
    submitted_by: str | None
    submitted_at: datetime


class PredictionFeedbackService:
    """Records outcomes and user feedback against ingested predictions; used by the API, the CLI and tests."""

    def __init__(self, db: sqlite_utils.Database, cipher: FieldCipher | None = None) -> None:
        self.db = db
        self.cipher = cipher or cipher_for_database(connection_of(db))

    def prediction(self, prediction_id: str) -> dict:
        """The prediction's stored row (its first arm); raise UnknownPrediction."""
        row = stored_predictions.first_arm(connection_of(self.db), prediction_id)
        if row is not None:
            return dict(row)
        raise UnknownPrediction(f"unknown prediction {prediction_id!r}: no gateway has reported it")

    def record_prediction_outcome(
        self,
        prediction_id: str,
        actual_outcome: ActualOutcome | Mapping[str, Any],
        feedback_source: FeedbackSource | str,
        *,
        actor: str | None = None,
    ) -> Recorded:
        """Store what was found (an ``ActualOutcome`` or the same fields as a dict) from ``feedback_source``
        (technician or sensor); InvalidFeedback for a dict or source that says nothing valid."""
        actual_outcome = _outcome(actual_outcome)
        try:
            source = FeedbackSource(feedback_source)
        except ValueError:
            choices = ", ".join(s.value for s in FeedbackSource)
            raise InvalidFeedback(f"feedback source must be one of {choices}, not {feedback_source!r}") from None
        prediction = self.prediction(prediction_id)
        outcome_id = actual_outcome.outcome_id or _outcome_key(prediction_id, source, actual_outcome)
        now = utc_now()
        row = {
            "outcome_id": outcome_id,
            "device_id": prediction["device_id"],
            "source": source.value,
            "observed_at": iso(actual_outcome.observed_at or now),
            "prediction_id": prediction_id,
            "component": actual_outcome.component,
            "result": actual_outcome.result,
            "value": actual_outcome.value,
            "technician": actual_outcome.technician,
            "notes": self.cipher.encrypt(actual_outcome.notes),
            "gateway_id": prediction["gateway_id"],
            "received_at": iso(now),
        }
        with write_transaction(self.db) as connection:
            created = stored_predictions.add_outcome_once(connection, row)
            if created:
                details = {"id": outcome_id, "source": source.value}
                AuditLog(self.db).record(actor or configured_actor(), "feedback.outcome", prediction_id, details)
            elif stored_predictions.prediction_of_outcome(connection, outcome_id) != prediction_id:
                raise InvalidFeedback(f"outcome id {outcome_id!r} is already used for another prediction")
        return Recorded(outcome_id, created)

    def record_user_feedback(
        self,
        prediction_id: str,
        feedback_rating: int,
        comments: str | None = None,
        submitted_by: str | None = None,
        *,
        actor: str | None = None,
    ) -> Recorded:
        if isinstance(feedback_rating, bool) or not isinstance(feedback_rating, int) or not 1 <= feedback_rating <= 5:
            raise InvalidFeedback(f"rating must be a whole number from 1 to 5, not {feedback_rating!r}")
        self.prediction(prediction_id)
        feedback_id = self.cipher.fingerprint(prediction_id, str(feedback_rating), comments or "", submitted_by or "")
        row = {
            "feedback_id": feedback_id,
            "prediction_id": prediction_id,
            "rating": feedback_rating,
            "comments": self.cipher.encrypt(comments),
            "submitted_by": submitted_by,
            "submitted_at": iso(utc_now()),
        }
        with write_transaction(self.db) as connection:
            created = stored_predictions.add_feedback_once(connection, row)
            if created:
                details = {"id": feedback_id, "rating": feedback_rating}
                AuditLog(self.db).record(actor or configured_actor(), "feedback.rate", prediction_id, details)
        return Recorded(feedback_id, created)

    def outcomes(self, prediction_id: str, decrypt: bool) -> list[StoredOutcome]:
        """The prediction's outcomes, oldest observation first; notes decrypted only if ``decrypt``."""
        self.prediction(prediction_id)
        rows = stored_predictions.outcomes_of(connection_of(self.db), prediction_id)
        return [
            StoredOutcome(
                **{**row, "notes": self.cipher.decrypt(row["notes"]) if decrypt else None},
                notes_redacted=not decrypt and row["notes"] is not None,
            )
            for row in rows
        ]

    def feedback(self, prediction_id: str, decrypt: bool) -> list[StoredFeedback]:
        """The prediction's ratings, oldest first; comments decrypted only if ``decrypt``."""
        self.prediction(prediction_id)
        rows = stored_predictions.feedback_of(connection_of(self.db), prediction_id)
        return [
            StoredFeedback(
                **{**row, "comments": self.cipher.decrypt(row["comments"]) if decrypt else None},
                comments_redacted=not decrypt and row["comments"] is not None,
            )
            for row in rows
        ]


def _outcome(given: ActualOutcome | Mapping[str, Any]) -> ActualOutcome:
    if isinstance(given, ActualOutcome):
        return given
    try:
        return ActualOutcome.model_validate(given)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'outcome'}: {e['msg']}" for e in exc.errors())
        raise InvalidFeedback(f"not a valid outcome ({problems})") from None


def _outcome_key(prediction_id: str, source: FeedbackSource, outcome: ActualOutcome) -> str:
    finding = [prediction_id, source.value, outcome.component, outcome.result, outcome.value]
    return hashlib.sha256(json.dumps(finding).encode()).hexdigest()[:32]
