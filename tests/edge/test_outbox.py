"""The outbox through real SQLite files and real Mosquitto: durable, in order, removed only on PUBACK."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from edge_agent.mqtt_link import MqttLink
from edge_agent.outbox import Outbox, OutboxSender
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for
from tests.private_broker import PrivateBroker, free_port

SHARED_BROKER = "mqtt://127.0.0.1:1883"


def _message(topic: str, n: int) -> tuple[str, bytes, str, str]:
    msg_id = uuid.uuid4().hex
    return topic, json.dumps({"n": n, "msg_id": msg_id}).encode(), msg_id, "features"


class Link:
    """An outbox sender wired to a reconnecting client, as the agent wires it."""

    def __init__(self, outbox: Outbox, url: str):
        self.mqtt = MqttLink(
            url,
            f"outbox-test-{uuid.uuid4().hex[:8]}",
            on_connected=lambda client: self.sender.connected(),
            on_disconnected=lambda: self.sender.disconnected(),
            reconnect_delay=(0.1, 0.5),
        )
        self.sender = OutboxSender(outbox, self.mqtt.client)
        self.sender.start()
        self.mqtt.start()

    def close(self) -> None:
        self.sender.stop()
        self.mqtt.stop()


def _numbers(payloads: list[bytes]) -> list[int]:
    return [json.loads(p)["n"] for p in payloads]


def _first_occurrences(payloads: list[bytes]) -> list[int]:
    """Message numbers in order of first arrival: at-least-once delivery may repeat an unacknowledged one."""
    seen: set[str] = set()
    numbers = []
    for body in map(json.loads, payloads):
        if body["msg_id"] not in seen:
            seen.add(body["msg_id"])
            numbers.append(body["n"])
    return numbers


def test_appended_rows_survive_reopening_in_order(tmp_path: Path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    for n in range(5):
        outbox.append(*_message("t", n))
    outbox.close()

    reopened = Outbox(tmp_path / "outbox.sqlite3")
    rows = reopened.take(3)
    assert [json.loads(r.payload)["n"] for r in rows] == [0, 1, 2]
    assert reopened.depth() == 5 and reopened.depth_by_channel() == {"features": 5}
    assert [json.loads(r.payload)["n"] for r in reopened.take()] == [3, 4], "taken rows are not taken again"
    reopened.remove([rows[0].id, rows[1].id])
    reopened.release([rows[2].id])
    assert [json.loads(r.payload)["n"] for r in reopened.take()] == [2]
    assert [json.loads(r.payload)["n"] for r in reopened.pending()] == [2, 3, 4]


@pytest.mark.mqtt
def test_everything_arrives_in_order_and_leaves_the_outbox(tmp_path: Path):
    topic = f"{unique_prefix()}/gw/gw1/up/features"
    collector = Collector(SHARED_BROKER, topic)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    link = Link(outbox, SHARED_BROKER)
    try:
        for n in range(250):  # more than the sender's window
            outbox.append(*_message(topic, n))
            link.sender.wake()
        wait_for(lambda: len(collector.payloads()) >= 250, what="250 messages")
        wait_for(lambda: outbox.depth() == 0, what="an empty outbox")
        assert _numbers(collector.payloads()) == list(range(250))
    finally:
        link.close()
        collector.close()


def test_broker_outage_loses_nothing_and_keeps_order(tmp_path: Path):
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    topic = f"{unique_prefix()}/gw/gw1/up/features"
    collector = Collector(broker.url, topic, persistent=True)
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    link = Link(outbox, broker.url)
    try:
        for n in range(20):
            outbox.append(*_message(topic, n))
            link.sender.wake()
        wait_for(lambda: len(collector.payloads()) >= 20, what="the first 20 messages")

        broker.stop()
        for n in range(20, 60):
            outbox.append(*_message(topic, n))
            link.sender.wake()
        # nothing can be acknowledged while the broker is down, so all 40 are still stored
        assert outbox.depth() >= 40

        broker.start()
        for n in range(60, 80):
            outbox.append(*_message(topic, n))
            link.sender.wake()
        wait_for(lambda: outbox.depth() == 0, timeout=20, what="the outbox to drain")
        wait_for(lambda: len(set(collector.payloads())) >= 80, timeout=20, what="all 80 messages")
        # QoS 1 is at least once: a message in flight when the broker died may come twice, never out of order
        assert _first_occurrences(collector.payloads()) == list(range(80))
    finally:
        link.close()
        collector.close()
        broker.stop()


@pytest.mark.mqtt
def test_rows_stored_while_no_broker_was_reachable_are_sent_after_a_restart(tmp_path: Path):
    topic = f"{unique_prefix()}/gw/gw1/up/events"
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path)
    nowhere = Link(outbox, f"mqtt://127.0.0.1:{free_port()}")
    for n in range(30):
        outbox.append(*_message(topic, n))
        nowhere.sender.wake()
    nowhere.close()
    outbox.close()  # the process ends with everything still queued

    collector = Collector(SHARED_BROKER, topic)
    restarted = Outbox(path)
    assert restarted.depth() == 30
    link = Link(restarted, SHARED_BROKER)
    try:
        wait_for(lambda: restarted.depth() == 0, what="the outbox to drain after restart")
        wait_for(lambda: len(collector.payloads()) >= 30, what="30 messages")
        assert _numbers(collector.payloads()) == list(range(30))
    finally:
        link.close()
        collector.close()
