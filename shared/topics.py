"""MQTT topic builders and parsers.

A gateway writes only under ``{prefix}/gw/{gateway_id}/up/...`` and reads only
``{prefix}/gw/{gateway_id}/down/...``, so one broker ACL pattern per direction confines it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_PREFIX = "iotsphere/v1"
#: the broker both sides reach when none is configured (beside the prefix: where cloud and gateways meet)
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"

_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Up(StrEnum):
    """Gateway → cloud channels."""

    FEATURES = "features"
    PREDICTIONS = "predictions"
    OUTCOMES = "outcomes"
    STATUS = "status"
    EVENTS = "events"


class Down(StrEnum):
    """Cloud → gateway channels."""

    DESIRED = "desired"


def validate_id(value: str, what: str = "id") -> str:
    """Reject ids that would break topic structure (``/``, ``+``, ``#``) or are unreasonably long."""
    if not _ID_RE.match(value):
        raise ValueError(f"invalid {what} {value!r}: use 1-64 of letters, digits, '_', '.', '-'")
    return value


def up_topic(gateway_id: str, channel: Up, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/gw/{validate_id(gateway_id, 'gateway id')}/up/{Up(channel).value}"


def down_topic(gateway_id: str, channel: Down, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}/gw/{validate_id(gateway_id, 'gateway id')}/down/{Down(channel).value}"


def up_wildcard(prefix: str = DEFAULT_PREFIX) -> str:
    """Everything every gateway sends up."""
    return f"{prefix}/gw/+/up/#"


def shared_subscription(topic_filter: str, group: str = "iotsphere-ingest") -> str:
    """MQTT 5 / Mosquitto shared subscription: several ingest workers split one stream."""
    return f"$share/{group}/{topic_filter}"


def telemetry_topic(gateway_id: str, device_id: str) -> str:
    return f"site/{validate_id(gateway_id, 'gateway id')}/heaters/{validate_id(device_id, 'device id')}/telemetry"


def telemetry_wildcard(gateway_id: str) -> str:
    return f"site/{validate_id(gateway_id, 'gateway id')}/heaters/+/telemetry"


@dataclass(frozen=True)
class GatewayTopic:
    gateway_id: str
    direction: str  # "up" or "down"
    channel: str


def parse_gateway_topic(topic: str, prefix: str = DEFAULT_PREFIX) -> GatewayTopic:
    """Split ``{prefix}/gw/{gw}/{up|down}/{channel}``; raise ValueError on anything else."""
    head = f"{prefix}/gw/"
    if not topic.startswith(head):
        raise ValueError(f"topic {topic!r} is not under {head!r}")
    parts = topic[len(head) :].split("/")
    if len(parts) != 3 or parts[1] not in ("up", "down"):
        raise ValueError(f"topic {topic!r} is not {head}<gateway>/<up|down>/<channel>")
    gateway_id, direction, channel = parts
    validate_id(gateway_id, "gateway id")
    allowed = {c.value for c in (Up if direction == "up" else Down)}
    if channel not in allowed:
        raise ValueError(f"unknown {direction} channel {channel!r} in topic {topic!r}")
    return GatewayTopic(gateway_id, direction, channel)


def parse_telemetry_topic(topic: str) -> tuple[str, str]:
    """Return ``(gateway_id, device_id)`` of a heater telemetry topic."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "site" or parts[2] != "heaters" or parts[4] != "telemetry":
        raise ValueError(f"topic {topic!r} is not site/<gateway>/heaters/<device>/telemetry")
    return validate_id(parts[1], "gateway id"), validate_id(parts[3], "device id")
