"""Delivering director documents: retained, QoS 1, on each gateway's ``down/desired``.

Documents are stored before they are sent and marked published only after the broker's PUBACK,
so a broker outage delays a rollout but never loses one: ``cloud.releases.director_worker`` keeps sending
what is pending. Every path that directs gateways
reports per gateway (``Directed``): the documents issued, the gateways that could not be directed and why, and why
nothing is on the broker yet if so.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from types import TracebackType

import paho.mqtt.client as mqtt
import sqlite_utils

from cloud.config import CloudConfig
from cloud.errors import TemporarilyUnavailable
from cloud.releases import director
from shared.director import DirectorDocument
from shared.mqtt_url import apply_endpoint, connect_error, parse_mqtt_url
from shared.topics import Down, down_topic

log = logging.getLogger(__name__)


class PublishError(TemporarilyUnavailable):
    """The broker did not take a director document; it stays stored and is published later."""


class RetainedPublisher:
    """One MQTT 3.1.1 connection that publishes retained QoS 1 messages, each confirmed by PUBACK."""

    def __init__(self, mqtt_url: str, timeout: float = 10.0):
        self.endpoint = parse_mqtt_url(mqtt_url)
        self.timeout = timeout
        self._connected = threading.Event()
        self._refused: str | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"iotsphere-director-{uuid.uuid4().hex[:12]}"
        )
        apply_endpoint(self.client, self.endpoint)
        self.client.on_connect = self._on_connect

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self._refused = str(reason_code)
        self._connected.set()

    def __enter__(self) -> RetainedPublisher:
        where = f"{self.endpoint.host}:{self.endpoint.port}"
        try:
            self.client.connect(self.endpoint.host, self.endpoint.port)
        except OSError as exc:
            raise PublishError(f"cannot reach the MQTT broker at {where}: {connect_error(exc)}") from exc
        self.client.loop_start()
        if not self._connected.wait(self.timeout) or self._refused:
            self.close()
            raise PublishError(
                f"the MQTT broker at {where} did not accept the connection: {self._refused or 'timeout'}"
            )
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=True)
        try:
            info.wait_for_publish(self.timeout)
        except (RuntimeError, ValueError) as exc:
            raise PublishError(f"publishing to {topic} failed: {exc}") from exc
        if not info.is_published():
            raise PublishError(f"no PUBACK for {topic} within {self.timeout} s")


def desired_topic(config: CloudConfig, gateway_id: str) -> str:
    return down_topic(gateway_id, Down.DESIRED, config.topic_prefix)


def publish_pending(config: CloudConfig, db: sqlite_utils.Database, timeout: float = 10.0) -> list[DirectorDocument]:
    """Send every stored document not yet confirmed by the broker; return those sent."""
    pending = director.unpublished_gateways(db)
    if not pending:
        return []
    sent = []
    with RetainedPublisher(config.mqtt_url, timeout) as publisher:
        for gateway_id in pending:
            document = director.latest_document(db, gateway_id)
            if document is None:
                continue
            publisher.publish(desired_topic(config, gateway_id), document.to_json())
            director.mark_published(db, gateway_id, document.signed.sequence)
            sent.append(document)
    return sent


@dataclass(frozen=True)
class Directed:
    """What directing gateways did, per gateway: documents issued, gateways that could not be directed (each
    recorded for the publisher to retry), and why the documents are not on the broker yet if they are not."""

    documents: list[DirectorDocument] = field(default_factory=list)
    failures: list[director.IssueFailure] = field(default_factory=list)
    #: set when the broker could not be reached: the documents are stored and the publisher sends them later
    pending: str | None = None

    @classmethod
    def of(cls, issued: director.Issued, pending: str | None) -> Directed:
        return cls(issued.documents, issued.failures, pending)


def deliver(config: CloudConfig, db: sqlite_utils.Database, timeout: float = 10.0) -> str | None:
    """Send what is pending; why it is not on the broker yet (stored, sent later), or None when it is."""
    try:
        publish_pending(config, db, timeout)
    except PublishError as exc:  # expected while the broker is down: the documents stay pending
        return str(exc)
    return None
