"""The gateway's one MQTT connection: MQTT 3.1.1, reconnecting on its own, with an optional last will."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from shared.mqtt_url import MqttEndpoint, apply_endpoint, parse_mqtt_url


@dataclass(frozen=True)
class LastWill:
    topic: str
    payload: bytes
    retain: bool = True


class MqttLink:
    """A paho client configured up front and connected by ``start``, so every callback is in place first.

    ``on_connected`` runs on paho's network thread after every successful (re)connect, which is
    where subscriptions are (re)made; refused or lost connections are left to paho's own retry.
    """

    def __init__(
        self,
        url: str,
        client_id: str,
        on_connected: Callable[[mqtt.Client], None],
        on_disconnected: Callable[[], None],
        will: LastWill | None = None,
        reconnect_delay: tuple[float, float] = (1, 30),
        keepalive: int = 30,
    ):
        self.endpoint: MqttEndpoint = parse_mqtt_url(url)
        self.keepalive = keepalive
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        apply_endpoint(self.client, self.endpoint)
        if will is not None:
            self.client.will_set(will.topic, will.payload, qos=1, retain=will.retain)
        self.client.reconnect_delay_set(min_delay=reconnect_delay[0], max_delay=reconnect_delay[1])

        def _on_connect(client, userdata, flags, reason_code, properties) -> None:
            if not reason_code.is_failure:
                on_connected(client)

        self.client.on_connect = _on_connect
        self.client.on_disconnect = lambda client, userdata, flags, reason_code, properties: on_disconnected()

    def start(self) -> None:
        """Connect in the background; keeps retrying while the broker is away."""
        self.client.connect_async(self.endpoint.host, self.endpoint.port, keepalive=self.keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
