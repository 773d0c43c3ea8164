"""Turn one received MQTT message into a validated uplink message or a dead-letter reason.

Every reason starts with a kind (``topic``, ``oversized``, ``malformed``, ``invalid``, ``gateway-mismatch``)
so dead letters can be counted by cause; the rest of the reason says what exactly was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pydantic import ValidationError

from cloud.ingest.feature_frame import FeatureFrame, parse_feature_frame
from shared.messages import MAX_PAYLOAD_BYTES, Envelope, parse_up
from shared.topics import GatewayTopic, Up, parse_gateway_topic

#: Longest reason kept; a pydantic error list for a 1000-row batch can otherwise run to megabytes.
MAX_REASON_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Accepted:
    channel: Up
    message: Envelope | FeatureFrame
    #: as received: the dead letter's, should the store refuse what the schema let through
    topic: str = ""
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str


def decode(topic: str, payload: bytes, prefix: str) -> Accepted | Rejected:
    """Check topic, size, JSON, schema and that the payload's gateway is the topic's gateway."""
    try:
        parsed = _parse_topic(topic, prefix)
    except ValueError as exc:
        return Rejected(f"topic: {exc}")
    if parsed.direction != "up":
        return Rejected(f"topic: {topic!r} is not an uplink topic")
    if len(payload) > MAX_PAYLOAD_BYTES:
        return Rejected(f"oversized: payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        message = _parse(parsed.channel, payload)
    except ValidationError as exc:
        return Rejected(_describe(exc))
    except ValueError as exc:
        return Rejected(f"invalid: {exc}"[:MAX_REASON_CHARS])
    if message.gateway_id != parsed.gateway_id:
        return Rejected(
            f"gateway-mismatch: topic is for gateway {parsed.gateway_id!r}, payload for {message.gateway_id!r}"
        )
    return Accepted(Up(parsed.channel), message, topic, payload)


def _parse(channel: str, payload: bytes) -> Envelope | FeatureFrame:
    """Features take the columnar path; whatever it refuses gets the full model's reason where the model has one."""
    if channel != Up.FEATURES:
        return parse_up(channel, payload)
    try:
        return parse_feature_frame(payload)
    except ValueError as exc:  # a ValidationError, or validate_id's ValueError for a device id
        parse_up(channel, payload)  # raises the contract's own error for anything the contract refuses
        # the contract allows it, but a value lies beyond float32's range and so has no stored form
        details = _details(exc) if isinstance(exc, ValidationError) else str(exc)
        raise ValueError(f"FeatureBatch: beyond float32, the stored form: {details}") from exc


@lru_cache(maxsize=65536)
def _parse_topic(topic: str, prefix: str) -> GatewayTopic:
    """Topics repeat (a few per gateway), and parsing one costs about as much as validating a small payload."""
    return parse_gateway_topic(topic, prefix)


def _describe(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] == "json_invalid":
        return f"malformed: {errors[0]['msg']}"[:MAX_REASON_CHARS]
    return f"invalid: {exc.title}: {_details(exc)}"[:MAX_REASON_CHARS]


def _details(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors)
