"""Outcomes and ratings of predictions: technicians write them, viewers read them, operators read the notes.

Each route exists twice: by prediction id alone (``/api/predictions/{prediction_id}/...``) and under the
water-heater prediction route (``/api/predictions/water-heaters/{device_id}/{prediction_type}/{prediction_id}/
...``), where the prediction must also belong to that device and type. The two never clash with the
read routes of ``predictions``: those have five and six path segments, these four and seven.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import Feedback, Technician, Viewer
from cloud.api.errors import error_responses
from cloud.api.keys import ApiKey
from cloud.api.params import Integer, Number, UtcIsoDatetime
from cloud.api.roles import Role, permits
from cloud.errors import NotFound
from cloud.feedback import ActualOutcome, PredictionFeedbackService, Recorded, StoredFeedback, StoredOutcome
from shared.messages import FeedbackSource, PredictionType

router = APIRouter(prefix="/api/predictions", tags=["feedback"], responses=error_responses(401, 403, 404, 503))

_BY_DEVICE = "/water-heaters/{device_id}/{prediction_type}/{prediction_id}"
_PREDICTION_ID = "7d0c5a6e2f1b4c3a9e8d7f6a5b4c3d2e"

PredictionId = Annotated[str, Path(description="The prediction's id, made on the edge.", examples=[_PREDICTION_ID])]
DeviceId = Annotated[str, Path(description="The water heater's device id.", examples=["wh-0042"])]
TypeName = Annotated[
    str, Path(description="One of: " + ", ".join(t.value for t in PredictionType), examples=["component_failure"])
]


class OutcomeIn(ActualOutcome):
    """An outcome as a technician reports it; ``source`` says who observed it."""

    source: FeedbackSource = FeedbackSource.TECHNICIAN
    observed_at: UtcIsoDatetime | None = None  # as text over HTTP; a number is no time
    value: Number | None = None  # a number, not true

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "source": "technician",
                    "component": "heating_element",
                    "result": "failed",
                    "observed_at": "2026-02-06T10:30:00Z",
                    "technician": "tech-17",
                    "notes": "lower element open circuit, replaced",
                }
            ]
        }
    )


class FeedbackIn(BaseModel):
    rating: Integer = Field(ge=1, le=5, description="How useful the prediction was, 1 (useless) to 5 (spot on).")
    comments: str | None = Field(None, max_length=4000, description="Free text; encrypted at rest.")

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"rating": 4, "comments": "caught it a week early"}]}
    )


class RecordedOut(BaseModel):
    """201 when this request stored it; 200 with ``created`` false when the same submission was stored before."""

    id: str
    prediction_id: str
    created: bool

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"id": "3f7a9c...", "prediction_id": _PREDICTION_ID, "created": True}]}
    )


_OUTCOME_EXAMPLE = {
    "outcome_id": "9b1f0c2d4e6a8b0c1d2e3f4a5b6c7d8e",
    "prediction_id": _PREDICTION_ID,
    "device_id": "wh-0042",
    "source": "technician",
    "observed_at": "2026-02-06T10:30:00Z",
    "component": "heating_element",
    "result": "failed",
    "value": None,
    "technician": "tech-17",
    "notes": None,
    "notes_redacted": True,
    "received_at": "2026-02-06T10:31:12Z",
}
_FEEDBACK_EXAMPLE = {
    "feedback_id": "5c8e2a7b9d1f3e4c6a8b0d2f4e6a8c0e",
    "prediction_id": _PREDICTION_ID,
    "rating": 4,
    "comments": "caught it a week early",
    "comments_redacted": False,
    "submitted_by": "k-3f9a",
    "submitted_at": "2026-02-06T11:00:00Z",
}


class OutcomesOut(BaseModel):
    prediction_id: str
    outcomes: list[StoredOutcome]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prediction_id": _PREDICTION_ID, "outcomes": [_OUTCOME_EXAMPLE]}]}
    )


class FeedbackOut(BaseModel):
    prediction_id: str
    feedback: list[StoredFeedback]

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"prediction_id": _PREDICTION_ID, "feedback": [_FEEDBACK_EXAMPLE]}]}
    )


_WRITE_RESPONSES = {
    **error_responses(401, 403, 404, 503),
    200: {"model": RecordedOut, "description": "Already recorded: nothing new stored."},
    409: {"description": "The outcome id is already used for another prediction."},
}


def _service(
    service: PredictionFeedbackService, device_id: str | None = None, prediction_type: str | None = None, *, pid: str
) -> PredictionFeedbackService:
    """The service, after checking the prediction exists (and, under a water heater, is that heater's)."""
    prediction = service.prediction(pid)
    if device_id is not None and (prediction["device_id"], prediction["prediction_type"]) != (
        device_id,
        prediction_type,
    ):
        raise NotFound(f"prediction {pid!r} is not a {prediction_type} prediction of device {device_id!r}")
    return service


def _answer(response: Response, pid: str, recorded: Recorded) -> RecordedOut:
    response.status_code = status.HTTP_201_CREATED if recorded.created else status.HTTP_200_OK
    return RecordedOut(id=recorded.id, prediction_id=pid, created=recorded.created)


def _outcome(
    service: PredictionFeedbackService, response: Response, pid: str, body: OutcomeIn, key: ApiKey
) -> RecordedOut:
    outcome = ActualOutcome(**body.model_dump(exclude={"source"}))
    return _answer(response, pid, service.record_prediction_outcome(pid, outcome, body.source, actor=key.actor))


def _feedback(
    service: PredictionFeedbackService, response: Response, pid: str, body: FeedbackIn, key: ApiKey
) -> RecordedOut:
    recorded = service.record_user_feedback(pid, body.rating, body.comments, key.key_id, actor=key.actor)
    return _answer(response, pid, recorded)


def _may_read_secrets(key: ApiKey) -> bool:
    return permits(key.role, Role.OPERATOR)


@router.post("/{prediction_id}/outcome", status_code=201, response_model=RecordedOut, responses=_WRITE_RESPONSES)
def record_outcome(
    feedback: Feedback, key: Technician, response: Response, prediction_id: PredictionId, body: OutcomeIn
) -> RecordedOut:
    """Record what actually happened after this prediction; the same outcome twice is stored once."""
    return _outcome(_service(feedback, pid=prediction_id), response, prediction_id, body, key)


@router.post("/{prediction_id}/feedback", status_code=201, response_model=RecordedOut, responses=_WRITE_RESPONSES)
def record_feedback(
    feedback: Feedback, key: Technician, response: Response, prediction_id: PredictionId, body: FeedbackIn
) -> RecordedOut:
    """Rate this prediction 1–5 with an optional comment (encrypted at rest); the same rating twice counts once."""
    return _feedback(_service(feedback, pid=prediction_id), response, prediction_id, body, key)


@router.get("/{prediction_id}/outcomes", response_model=OutcomesOut)
def list_outcomes(feedback: Feedback, key: Viewer, prediction_id: PredictionId) -> OutcomesOut:
    """This prediction's outcomes; technician notes are shown to operators and admins only."""
    outcomes = _service(feedback, pid=prediction_id).outcomes(prediction_id, decrypt=_may_read_secrets(key))
    return OutcomesOut(prediction_id=prediction_id, outcomes=outcomes)


@router.get("/{prediction_id}/feedback", response_model=FeedbackOut)
def list_feedback(feedback: Feedback, key: Viewer, prediction_id: PredictionId) -> FeedbackOut:
    """This prediction's ratings; comments are shown to operators and admins only."""
    ratings = _service(feedback, pid=prediction_id).feedback(prediction_id, decrypt=_may_read_secrets(key))
    return FeedbackOut(prediction_id=prediction_id, feedback=ratings)


@router.post(_BY_DEVICE + "/outcome", status_code=201, response_model=RecordedOut, responses=_WRITE_RESPONSES)
def record_heater_outcome(
    feedback: Feedback,
    key: Technician,
    response: Response,
    device_id: DeviceId,
    prediction_type: TypeName,
    prediction_id: PredictionId,
    body: OutcomeIn,
) -> RecordedOut:
    """Record an outcome of this water heater's prediction; 404 if the prediction is another heater's or type's."""
    service = _service(feedback, device_id, prediction_type, pid=prediction_id)
    return _outcome(service, response, prediction_id, body, key)


@router.post(_BY_DEVICE + "/feedback", status_code=201, response_model=RecordedOut, responses=_WRITE_RESPONSES)
def record_heater_feedback(
    feedback: Feedback,
    key: Technician,
    response: Response,
    device_id: DeviceId,
    prediction_type: TypeName,
    prediction_id: PredictionId,
    body: FeedbackIn,
) -> RecordedOut:
    """Rate this water heater's prediction 1–5; 404 if the prediction is another heater's or type's."""
    service = _service(feedback, device_id, prediction_type, pid=prediction_id)
    return _feedback(service, response, prediction_id, body, key)


@router.get(_BY_DEVICE + "/outcomes", response_model=OutcomesOut)
def list_heater_outcomes(
    feedback: Feedback, key: Viewer, device_id: DeviceId, prediction_type: TypeName, prediction_id: PredictionId
) -> OutcomesOut:
    """This water heater's prediction's outcomes; notes for operators and admins only."""
    service = _service(feedback, device_id, prediction_type, pid=prediction_id)
    return OutcomesOut(prediction_id=prediction_id, outcomes=service.outcomes(prediction_id, _may_read_secrets(key)))


@router.get(_BY_DEVICE + "/feedback", response_model=FeedbackOut)
def list_heater_feedback(
    feedback: Feedback, key: Viewer, device_id: DeviceId, prediction_type: TypeName, prediction_id: PredictionId
) -> FeedbackOut:
    """This water heater's prediction's ratings; comments for operators and admins only."""
    service = _service(feedback, device_id, prediction_type, pid=prediction_id)
    return FeedbackOut(prediction_id=prediction_id, feedback=service.feedback(prediction_id, _may_read_secrets(key)))
