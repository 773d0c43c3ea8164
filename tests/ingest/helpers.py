"""Helpers for the ingest tests: a QoS 1 publisher, polling, and one payload factory per uplink channel."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.crypto_fields import cipher_for_database
from cloud.data.connections import connection_of
from shared.messages import (
    Envelope,
    EventKind,
    FeatureBatch,
    FeatureRow,
    FeedbackSource,
    GatewayEvent,
    GatewayStatus,
    Outcome,
    OutcomeBatch,
    Prediction,
    PredictionBatch,
    PredictionType,
)
from shared.topics import Up, up_topic
from tests import rows

BROKER_URL = "mqtt://127.0.0.1:1883"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NAMES = ["temp_mean", "temp_slope", "power_mean"]


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


class Publisher:
    """A gateway-side paho client publishing QoS 1 and waiting until the broker has each message."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("pub"))
        self.client.max_inflight_messages_set(100)
        self.client.connect("127.0.0.1", 1883)
        self.client.loop_start()

    def send(self, message: Envelope, channel: Up | None = None, *, topic: str | None = None) -> None:
        self.raw(topic or up_topic(message.gateway_id, channel, self.prefix), message.to_json())

    def raw(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def forget_session(client_id: str) -> None:
    """Make the broker drop a worker's persistent session, so test runs leave nothing queued behind."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", 1883, clean_start=True)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def count(db, table: str) -> int:
    return rows.count(db, table)


def plain_payload(db, stored: bytes) -> bytes:
    """A dead letter's payload as received: it rests encrypted with the field key (``cloud.dead_letters``)."""
    return cipher_for_database(connection_of(db)).decrypt_bytes(stored)


# -- payload factories ---------------------------------------------------------------------------------------


def features(gateway: str = "gw1", devices: tuple[str, ...] = ("h1",), window: int = 0, **kw) -> FeatureBatch:
    rows = [
        FeatureRow(
            device_id=d, device_type="tank-50", window_end=T0 + timedelta(minutes=window), values=[1.5, None, 3.0]
        )
        for d in devices
    ]
    return FeatureBatch(gateway_id=gateway, feature_set_version="fs1", feature_names=NAMES, rows=rows, **kw)


def predictions(gateway: str = "gw1", prediction_id: str = "pred-0001", **kw) -> PredictionBatch:
    prediction = Prediction(
        prediction_id=prediction_id,
        device_id="h1",
        device_type="tank-50",
        prediction_type=PredictionType.COMPONENT_FAILURE,
        model_name="component_failure",
        model_version="3",
        outputs={"heating_element": 0.25},
        latency_ms=1.5,
        made_at=T0 + timedelta(minutes=5),
        feature_window_end=T0,
    )
    return PredictionBatch(gateway_id=gateway, predictions=[prediction], **kw)


def outcomes(gateway: str = "gw1", outcome_id: str = "outcome-0001", **kw) -> OutcomeBatch:
    outcome = Outcome(
        outcome_id=outcome_id,
        device_id="h1",
        source=FeedbackSource.TECHNICIAN,
        observed_at=T0 + timedelta(days=2),
        prediction_id="pred-0001",
        technician="tech-7",
        notes="element replaced",
    )
    return OutcomeBatch(gateway_id=gateway, outcomes=[outcome], **kw)


def status(gateway: str = "gw1", online: bool = True, **kw) -> GatewayStatus:
    return GatewayStatus(gateway_id=gateway, online=online, agent_version="1.2.0", director_sequence=7, **kw)


def event(gateway: str = "gw1", **kw) -> GatewayEvent:
    return GatewayEvent(
        gateway_id=gateway, kind=EventKind.REJECT, model_name="component_failure", rule="director-expired", **kw
    )
