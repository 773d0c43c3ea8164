"""Small MQTT helpers for the edge tests: a collecting subscriber and a waiting loop."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import paho.mqtt.client as mqtt

from shared.mqtt_url import apply_endpoint, parse_mqtt_url


def unique_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1"


def wait_for(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Collector:
    """Subscribes (QoS 1) and keeps every message in arrival order.

    ``persistent`` uses a fixed client id without clean session, so a broker with persistence keeps
    the subscription and queues messages for it across a broker restart.
    """

    def __init__(self, url: str, topic_filter: str, persistent: bool = False):
        endpoint = parse_mqtt_url(url)
        self.topic_filter = topic_filter
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"collector-{uuid.uuid4().hex[:8]}",
            clean_session=not persistent,
        )
        apply_endpoint(self.client, endpoint)  # credentials and TLS, as every client of the project
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda *args: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("collector did not subscribe")

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append(message)

    def payloads(self) -> list[bytes]:
        with self._lock:
            return [m.payload for m in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
