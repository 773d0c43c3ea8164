"""The outbox through real SQLite files and real Mosquitto: durable, in order, removed only on PUBACK."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from edge_agent.mqtt_link import MqttLink
from edge_agent.outbox import Outbox, OutboxSender
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for
from tests.private_broker import PrivateBroker, free_port

SHARED_BROKER = "mqtt://127.0.0.1:1883"
PROJECT = Path(__file__).parents[2]


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


def _sized(channel: str, n: int, size: int = 100) -> tuple[str, bytes, str, str]:
    """A message of exactly ``size`` bytes, numbered ``n``."""
    msg_id = uuid.uuid4().hex
    body = json.dumps({"n": n, "msg_id": msg_id, "pad": ""}).encode()
    body = json.dumps({"n": n, "msg_id": msg_id, "pad": "x" * (size - len(body))}).encode()
    return f"t/{channel}", body, msg_id, channel


def _taken_numbers(outbox: Outbox) -> list[tuple[str, int]]:
    return [(row.channel, json.loads(row.payload)["n"]) for row in outbox.take(1000)]


def test_outcomes_and_events_are_taken_before_bulk_data(tmp_path: Path):
    outbox = Outbox(tmp_path / "outbox.sqlite3")
    for channel, n in [("features", 0), ("predictions", 1), ("outcomes", 2), ("features", 3), ("events", 4)]:
        outbox.append(*_sized(channel, n))
    assert _taken_numbers(outbox) == [
        ("outcomes", 2),
        ("events", 4),
        ("features", 0),
        ("predictions", 1),
        ("features", 3),
    ]


def test_a_bounded_channel_drops_its_oldest_and_the_count_survives_a_restart(tmp_path: Path):
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path, bounds={"features": 450, "predictions": 250})
    for n in range(10):
        outbox.append(*_sized("features", n))
        outbox.append(*_sized("predictions", 100 + n))
        outbox.append(*_sized("outcomes", 200 + n))
    assert outbox.dropped() == {"features": 6, "predictions": 8}
    assert outbox.bytes_by_channel() == {"features": 400, "predictions": 200, "outcomes": 1000}
    outbox.close()

    reopened = Outbox(path, bounds={"features": 450, "predictions": 250})
    assert reopened.dropped() == {"features": 6, "predictions": 8}
    taken = _taken_numbers(reopened)
    assert [n for channel, n in taken if channel == "outcomes"] == list(range(200, 210)), "outcomes are never dropped"
    assert [n for channel, n in taken if channel == "features"] == [6, 7, 8, 9], "the newest are kept"
    assert [n for channel, n in taken if channel == "predictions"] == [108, 109]


def test_rows_taken_for_sending_are_not_dropped(tmp_path: Path):
    outbox = Outbox(tmp_path / "outbox.sqlite3", bounds={"features": 300})
    for n in range(3):
        outbox.append(*_sized("features", n))
    in_flight = outbox.take(2)  # 0 and 1 are with paho now
    outbox.append(*_sized("features", 3))
    outbox.append(*_sized("features", 4))
    # over the bound, but only by rows in flight (paho re-sends those after a reconnect, so they are not lost)
    assert outbox.dropped() == {}
    outbox.remove([row.id for row in in_flight])  # acknowledged
    outbox.append(*_sized("features", 5))
    assert outbox.dropped() == {"features": 1}
    assert [json.loads(row.payload)["n"] for row in outbox.pending()] == [3, 4, 5]


def test_outcomes_cannot_be_bounded(tmp_path: Path):
    with pytest.raises(ValueError, match="never dropped"):
        Outbox(tmp_path / "outbox.sqlite3", bounds={"outcomes": 1000})


def test_an_outbox_written_before_priorities_is_upgraded_in_place(tmp_path: Path):
    path = tmp_path / "outbox.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload BLOB NOT NULL,"
            " msg_id TEXT NOT NULL, channel TEXT NOT NULL, created_at REAL NOT NULL)"
        )
        for channel, n in [("features", 0), ("events", 1)]:
            topic, payload, msg_id, channel = _sized(channel, n)
            old.execute(
                "INSERT INTO outbox (topic, payload, msg_id, channel, created_at) VALUES (?, ?, ?, ?, 0)",
                (topic, payload, msg_id, channel),
            )
    outbox = Outbox(path, bounds={"features": 1000})
    assert _taken_numbers(outbox) == [("events", 1), ("features", 0)]
    assert outbox.bytes_by_channel() == {"events": 100, "features": 100}


_APPEND_OUTCOMES = """
import json, sys, uuid
from pathlib import Path
from edge_agent.outbox import Outbox
outbox = Outbox(Path(sys.argv[1]))
for n in range(int(sys.argv[2])):
    msg_id = uuid.uuid4().hex
    outbox.append("t/outcomes", json.dumps({"n": n, "msg_id": msg_id}).encode(), msg_id, "outcomes")
"""


def test_another_process_can_append_while_this_one_writes(tmp_path: Path):
    path = tmp_path / "outbox.sqlite3"
    outbox = Outbox(path, bounds={"features": 10_000_000})
    other = subprocess.Popen(
        [sys.executable, "-c", _APPEND_OUTCOMES, str(path), "200"], cwd=PROJECT, env={**os.environ, "PYTHONPATH": "."}
    )
    for n in range(200):
        outbox.append(*_sized("features", n))
    assert other.wait(60) == 0
    assert outbox.depth_by_channel() == {"features": 200, "outcomes": 200}
    assert [n for channel, n in _taken_numbers(outbox) if channel == "outcomes"] == list(range(200))


def test_reconnect_delays_grow_exponentially_with_jitter_and_start_over_after_a_connect():
    link = MqttLink(
        f"mqtt://127.0.0.1:{free_port()}",
        f"backoff-test-{uuid.uuid4().hex[:8]}",
        on_connected=lambda client: None,
        on_disconnected=lambda: None,
        reconnect_delay=(1, 8),
    )
    steps = [1, 2, 4, 8, 8, 8]
    delays = []
    for _ in range(200):
        link.backoff.reset()
        for step in steps:
            link.backoff.failed()
            assert 0 <= link.backoff.last_delay <= step
            delays.append(link.backoff.last_delay)
    late = delays[3 :: len(steps)]  # the fourth wait of each run, capped at 8 s
    assert len(set(late)) > 100, "gateways that failed together must not retry together"
    assert max(late) > 4 > min(late), "full jitter spreads waits over the whole step"
