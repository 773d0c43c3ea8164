"""Pydantic models of every MQTT payload between gateways and the cloud.

Every payload carries ``schema`` (its version), a unique ``msg_id`` (the cloud ingests
idempotently on it) and a UTC ``sent_at``. Unknown fields are refused so that a sender on a newer
schema is noticed instead of silently half-read.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from shared.limits import Counters, ModelOutput, Name, SafeCount, Sequence, Sha256Hex, Version, WireTime
from shared.topics import Up, validate_id

SCHEMA_VERSION = 1
#: Largest payload the cloud accepts; bigger ones are dead-lettered as oversized.
MAX_PAYLOAD_BYTES = 256 * 1024
#: one model run's latency: an hour is far beyond any run that could still serve
MAX_LATENCY_MS = 3_600_000.0
#: an outcome's measured quantity (litres drawn in a day, a temperature): far beyond any real one
MAX_OUTCOME_VALUE = 1e9


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamps must carry a UTC offset")
    return value.astimezone(UTC)


#: with an offset, within the wire's span of times (``shared.limits``), moved to UTC
UtcDatetime = Annotated[WireTime, AfterValidator(_aware_utc)]
Identifier = Annotated[str, AfterValidator(validate_id)]


def new_msg_id() -> str:
    """128 random bits as 32 hex digits, as many as a uuid4 has, without a system call per id.

    Message ids only need to be unique (ingest deduplicates on them), not secret. ``uuid4`` reads
    ``os.urandom`` per call, which releases the GIL: once per heater reading, the in-process demo fleet
    spent about a quarter of its feed thread waiting to get the GIL back. ``random`` reseeds after a fork.
    """
    return f"{random.getrandbits(128):032x}"


class PredictionType(StrEnum):
    COMPONENT_FAILURE = "component_failure"
    USAGE_PATTERN = "usage_pattern"
    ANOMALY = "anomaly"


class Arm(StrEnum):
    CHAMPION = "champion"
    CHALLENGER = "challenger"
    SHADOW = "shadow"


class OutcomeResult(StrEnum):
    FAILED = "failed"
    OK = "ok"
    REPLACED = "replaced"


class FeedbackSource(StrEnum):
    TECHNICIAN = "technician"
    SENSOR = "sensor"
    USER = "user"


class Component(StrEnum):
    """Heater components the failure model predicts, one per simulated fault mode."""

    HEATING_ELEMENT = "heating_element"
    THERMOSTAT = "thermostat"
    SEDIMENT = "sediment"
    TANK_LEAK = "tank_leak"
    SENSOR = "sensor"


class _Strict(BaseModel):
    #: floats are finite everywhere: pydantic's JSON parser takes ``NaN``/``Infinity`` and reads ``1e400`` as infinity
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)


class Envelope(_Strict):
    schema_version: Literal[1] = Field(SCHEMA_VERSION, alias="schema")
    msg_id: str = Field(default_factory=new_msg_id, min_length=8, max_length=64)
    sent_at: UtcDatetime = Field(default_factory=utc_now)
    gateway_id: Identifier

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode("utf-8")


class FeatureRow(_Strict):
    device_id: Identifier
    device_type: str = Field(min_length=1, max_length=64)
    window_end: UtcDatetime
    #: finite numbers, or null for a feature the window could not provide
    values: list[float | None]


class FeatureBatch(Envelope):
    """``up/features``: feature vectors of one feature-set version, names sent once per batch."""

    feature_set_version: str = Field(min_length=1, max_length=16)
    feature_names: list[Name] = Field(min_length=1, max_length=1024)
    rows: list[FeatureRow] = Field(min_length=1, max_length=1000)

    @field_validator("rows")
    @classmethod
    def _aligned(cls, rows: list[FeatureRow], info) -> list[FeatureRow]:
        names = info.data.get("feature_names") or []
        for row in rows:
            if len(row.values) != len(names):
                raise ValueError(f"row for {row.device_id} has {len(row.values)} values for {len(names)} names")
        return rows


class Prediction(_Strict):
    prediction_id: str = Field(min_length=8, max_length=64)
    device_id: Identifier
    device_type: str = Field(min_length=1, max_length=64)
    prediction_type: PredictionType
    model_name: Name
    model_version: Version
    arm: Arm = Arm.CHAMPION
    outputs: dict[Name, ModelOutput] = Field(max_length=64)
    latency_ms: float = Field(ge=0, le=MAX_LATENCY_MS)
    made_at: UtcDatetime
    feature_window_end: UtcDatetime | None = None


class PredictionBatch(Envelope):
    """``up/predictions``: prediction events made on the edge."""

    predictions: list[Prediction] = Field(min_length=1, max_length=1000)


class Outcome(_Strict):
    """What actually happened: a technician's finding, a sensor's reading, or a user's report."""

    outcome_id: str = Field(default_factory=new_msg_id, min_length=8, max_length=64)
    device_id: Identifier
    source: FeedbackSource
    observed_at: UtcDatetime
    prediction_id: str | None = Field(None, max_length=64)
    component: Component | None = None
    result: OutcomeResult | None = None
    #: measured quantity for regression outcomes (e.g. litres drawn in the 24 h after a usage prediction)
    value: float | None = Field(None, ge=-MAX_OUTCOME_VALUE, le=MAX_OUTCOME_VALUE)
    technician: str | None = Field(None, max_length=128)
    notes: str | None = Field(None, max_length=4000)


class OutcomeBatch(Envelope):
    """``up/outcomes``: outcomes logged on site, delivered when the gateway is online."""

    outcomes: list[Outcome] = Field(min_length=1, max_length=1000)


class ModelState(_Strict):
    model_name: Name
    active_version: Version | None = None
    installed_versions: list[Version] = Field(default_factory=list, max_length=64)
    state: Literal["none", "probation", "committed", "rolled_back"] = "none"
    #: the challenger release running beside the active one in an experiment, and that experiment
    challenger_version: Version | None = None
    experiment_id: Name | None = None
    experiment_mode: Literal["shadow", "split"] | None = None
    #: predictions sent and failed runs per arm (``champion``, ``challenger``, ``shadow``) since the agent started
    predictions: Counters = Field(default_factory=dict)
    failures: Counters = Field(default_factory=dict)


class GatewayStatus(Envelope):
    """``up/status`` (retained). The last will carries only ``online`` false (``health`` offline): the cloud keeps
    the rest from the last online status."""

    online: bool
    agent_version: Version
    models: list[ModelState] = Field(default_factory=list, max_length=64)
    director_sequence: Sequence | None = None
    outbox_depth: SafeCount = 0
    dropped: Counters = Field(default_factory=dict)
    health: Literal["ok", "degraded", "offline"] = "ok"
    heaters: SafeCount = 0


class EventKind(StrEnum):
    #: a release starts downloading (the cloud's ``downloading`` state)
    DOWNLOAD = "download"
    INSTALL = "install"
    REJECT = "reject"
    ACTIVATE = "activate"
    COMMIT = "commit"
    ROLLBACK = "rollback"
    HEALTH = "health"
    #: a challenger release started or stopped running beside the model's active release
    CHALLENGER = "challenger"


class GatewayEvent(Envelope):
    """``up/events``: what the updater did, and for a rejection the rule that failed."""

    kind: EventKind
    model_name: Name | None = None
    model_version: Version | None = None
    director_sequence: Sequence | None = None
    #: SHA-256 of the director document the event is about, as the gateway received it: the cloud matches
    #: events to the documents it issued by this, never by the sequence a forged document can copy
    document_digest: Sha256Hex | None = None
    rule: Name | None = None
    detail: str = Field("", max_length=4000)


UP_MODELS: dict[Up, type[Envelope]] = {
    Up.FEATURES: FeatureBatch,
    Up.PREDICTIONS: PredictionBatch,
    Up.OUTCOMES: OutcomeBatch,
    Up.STATUS: GatewayStatus,
    Up.EVENTS: GatewayEvent,
}


def parse_up(channel: str, payload: bytes) -> Envelope:
    """Validate an ``up/<channel>`` payload; raise ValueError (pydantic's ValidationError is one)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    model = UP_MODELS[Up(channel)]
    return model.model_validate_json(payload)
