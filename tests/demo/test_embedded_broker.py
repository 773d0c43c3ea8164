"""The embedded broker carries what the system needs: QoS 1 with PUBACK, retained messages, clean stop."""

from __future__ import annotations

import socket
import threading
import time

import paho.mqtt.client as mqtt

from cloud.embedded_broker import EmbeddedBroker


def _client(broker: EmbeddedBroker, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def test_retained_qos1_message_reaches_a_later_subscriber():
    with EmbeddedBroker() as broker:
        publisher = _client(broker, "publisher")
        info = publisher.publish("demo/down/desired", b"document", qos=1, retain=True)
        info.wait_for_publish(5)
        assert info.is_published()  # PUBACK received

        received: list[mqtt.MQTTMessage] = []
        arrived = threading.Event()
        subscriber = _client(broker, "subscriber")
        subscriber.on_message = lambda _c, _u, message: (received.append(message), arrived.set())
        subscriber.subscribe("demo/down/#", qos=1)
        assert arrived.wait(5)
        assert (received[0].topic, received[0].payload, received[0].retain, received[0].qos) == (
            "demo/down/desired",
            b"document",
            True,
            1,
        )
        for client in (publisher, subscriber):
            client.disconnect()
            client.loop_stop()


def test_stop_frees_the_port():
    broker = EmbeddedBroker().start()
    port = broker.port
    broker.stop()
    broker.stop()  # twice is harmless
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_a_connecting_client_gets_only_the_retained_messages_it_subscribed_to():
    """amqtt 0.12.1 alone sends a new client the retained messages of every client's subscriptions."""
    with EmbeddedBroker() as broker:
        cloud = _client(broker, "cloud")
        cloud.subscribe("prefix/gw/+/up/#", qos=1)
        status = cloud.publish("prefix/gw/gw1/up/status", b"online", qos=1, retain=True)
        status.wait_for_publish(5)
        own = cloud.publish("prefix/gw/gw2/down/desired", b"document", qos=1, retain=True)
        own.wait_for_publish(5)

        received: list[str] = []
        arrived = threading.Event()
        gateway = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="gw2", protocol=mqtt.MQTTv311)
        gateway.on_message = lambda _c, _u, message: (received.append(message.topic), arrived.set())
        gateway.on_connect = lambda client, *_: client.subscribe("prefix/gw/gw2/down/#", qos=1)
        gateway.connect("127.0.0.1", broker.port)
        gateway.loop_start()
        assert arrived.wait(5)
        time.sleep(0.5)  # anything else the broker would send arrives by now
        assert received == ["prefix/gw/gw2/down/desired"]
        for client in (cloud, gateway):
            client.disconnect()
            client.loop_stop()
