"""The gateway's one MQTT connection: MQTT 3.1.1, reconnecting on its own with jittered backoff, and an
optional last will, built afresh before every (re)connect."""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from shared.mqtt_url import MqttEndpoint, apply_endpoint_with_ca, connect_error, parse_mqtt_url

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LastWill:
    topic: str
    payload: bytes
    retain: bool = True


class JitteredBackoff:
    """Exponential backoff with full jitter for paho's reconnects: each wait is drawn at random below a step that
    doubles from ``min`` up to ``max``.

    paho doubles its delay from ``min`` to ``max`` but adds no jitter, so every gateway that lost the
    same broker would retry in lockstep and hit it together when it comes back. Before each wait this
    sets paho's delay (``min`` = ``max``) to the next jittered value; a successful connect starts over.
    (Written out rather than taken from the ``backoff`` library, which imports asyncio: 1 MB of the gateway's
    memory for two lines.)
    """

    def __init__(self, client: mqtt.Client, min_delay: float, max_delay: float):
        if not 0 < min_delay <= max_delay:
            raise ValueError("reconnect delays must satisfy 0 < min <= max")
        self.client = client
        self.min_delay = min_delay
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._delays = self._fresh()
        self.last_delay = 0.0

    def _fresh(self) -> Iterator[float]:
        step = self.min_delay
        while True:
            yield step
            step = min(step * 2, self.max_delay)

    def reset(self) -> None:
        with self._lock:
            self._delays = self._fresh()

    def failed(self) -> None:
        """A connection was lost or refused: the next wait is drawn at random below the next exponential step."""
        with self._lock:
            self.last_delay = random.uniform(0, next(self._delays))
        self.client.reconnect_delay_set(min_delay=self.last_delay, max_delay=self.last_delay)


class MqttLink:
    """A paho client configured up front and connected by ``start``, so every callback is in place first.

    ``on_connected`` runs on paho's network thread after every successful (re)connect, which is
    where subscriptions are (re)made; refused or lost connections are retried by paho after a
    jittered, exponentially growing delay. ``will`` is called before every connect (paho's
    ``on_pre_connect``): the broker keeps the will of the connection it arrived with, so each
    connection gets its own message (a new ``msg_id``, or ingest would skip a second death's will
    as a duplicate of the first).
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        on_connected: Callable[[mqtt.Client], None],
        on_disconnected: Callable[[], None],
        will: Callable[[], LastWill] | None = None,
        reconnect_delay: tuple[float, float] = (1, 30),
        keepalive: int = 30,
        ca_file: Path | None = None,
    ):
        self.endpoint: MqttEndpoint = parse_mqtt_url(url)
        self.keepalive = keepalive
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        apply_endpoint_with_ca(self.client, self.endpoint, ca_file)
        if will is not None:

            def _set_will(client, userdata) -> None:
                message = will()
                client.will_set(message.topic, message.payload, qos=1, retain=message.retain)

            self.client.on_pre_connect = _set_will
        self.backoff = JitteredBackoff(self.client, *reconnect_delay)

        def _on_connect(client, userdata, flags, reason_code, properties) -> None:
            if reason_code.is_failure:
                self.backoff.failed()
                return
            self.backoff.reset()
            on_connected(client)

        def _on_disconnect(client, userdata, flags, reason_code, properties) -> None:
            self.backoff.failed()
            on_disconnected()

        self.client.on_connect = _on_connect

        def _on_connect_fail(client, userdata) -> None:
            where = f"{self.endpoint.host}:{self.endpoint.port}"
            log.warning("cannot connect to the MQTT broker at %s: %s", where, connect_error(sys.exc_info()[1]))
            self.backoff.failed()

        self.client.on_connect_fail = _on_connect_fail
        self.client.on_disconnect = _on_disconnect

    def start(self) -> None:
        """Connect in the background; keeps retrying while the broker is away."""
        self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=self.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
