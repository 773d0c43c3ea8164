"""The live fleet: valid readings, deterministic, the edge's window path equals the vectorised one, and
publishing through the real Mosquitto."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import paho.mqtt.client as mqtt
import pytest

from firmware_sim.faults import SENSOR_RAILS_C, UPPER
from firmware_sim.fleet import FleetSimulator
from firmware_sim.live import Fleet, publish
from shared.features import WINDOW_SAMPLES, TelemetryWindow, compute_features, window_from_readings
from shared.messages import Component
from shared.telemetry import ErrorCode, Telemetry, parse_telemetry
from shared.topics import DEFAULT_MQTT_URL, parse_telemetry_topic, telemetry_wildcard

START = datetime(2025, 7, 1, 5, 30, tzinfo=UTC)


def content(reading: Telemetry) -> dict:
    return reading.model_dump(exclude={"msg_id"})


def test_readings_are_valid_and_deterministic():
    a, b = Fleet("gw-det", 4, seed=3, start=START), Fleet("gw-det", 4, seed=3, start=START)
    for minute in range(1, 31):
        first, second = a.step(), b.step()
        assert [content(r) for r in first] == [content(r) for r in second]
        assert len({r.msg_id for r in first + second}) == 8
        assert {r.ts for r in first} == {START + timedelta(minutes=minute)} and {r.seq for r in first} == {minute}
        for reading in first:
            assert parse_telemetry(reading.to_json()) == reading
    assert a.device_ids == [f"gw-det-{i:05d}" for i in range(4)] and a.now == START + timedelta(minutes=30)
    other = Fleet("gw-det", 4, seed=4, start=START)
    assert [content(r) for r in other.step()] != [content(r) for r in Fleet("gw-det", 4, seed=3, start=START).step()]


def test_window_from_readings_equals_the_vectorised_path():
    fleet = Fleet("gw-win", 3, seed=8, start=START)
    readings = [r for _ in range(WINDOW_SAMPLES) for r in fleet.step()]
    rng = random.Random(1)
    kept = [r for r in readings if rng.random() > 0.05]  # lost readings leave gaps
    kept += kept[:10]  # duplicates change nothing
    rng.shuffle(kept)
    received = [parse_telemetry(r.to_json()) for r in kept]  # as the edge gets them
    end = START + timedelta(minutes=WINDOW_SAMPLES)
    edge_windows = [
        window_from_readings([r for r in received if r.device_id == device], end) for device in fleet.device_ids
    ]

    sim = FleetSimulator(3, 8, START, device_prefix="gw-win")
    blocks = [sim.next_block().window for _ in range(4)]
    window = TelemetryWindow(
        **{name: np.concatenate([getattr(b, name) for b in blocks], 1) for name in vars(blocks[0])}
    )
    present = np.zeros(window.shape, bool)
    for r in kept:
        present[fleet.device_ids.index(r.device_id), int((r.ts - START).total_seconds() // 60) - 1] = True
    for name in vars(window):
        getattr(window, name)[~present] = np.nan
        edge = np.concatenate([getattr(w, name) for w in edge_windows])
        np.testing.assert_array_equal(edge, getattr(window, name), err_msg=name)
    # one heater at a time or the fleet at once: the same features, up to float32 summation order
    per_heater = np.concatenate([compute_features(w) for w in edge_windows])
    np.testing.assert_allclose(per_heater, compute_features(window), rtol=1e-5, atol=1e-4)


def test_window_from_readings_refuses_mixed_or_no_heaters():
    fleet = Fleet("gw-mix", 2, seed=1, start=START)
    with pytest.raises(ValueError, match="one heater"):
        window_from_readings(fleet.step())
    with pytest.raises(ValueError, match="no readings"):
        window_from_readings([])


@pytest.mark.mqtt
def test_publishes_every_reading_through_mosquitto():
    gateway = f"gw-{uuid.uuid4().hex[:8]}"  # the site topic has no prefix: a unique gateway isolates the test
    received: list[tuple[str, bytes]] = []
    subscribed, done = threading.Event(), threading.Event()
    heaters, minutes = 3, 5

    def on_message(client, userdata, message):
        received.append((message.topic, message.payload))
        if len(received) >= heaters * minutes:
            done.set()

    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    listener.on_message = on_message
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(telemetry_wildcard(gateway), qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(5)
        fleet = Fleet(gateway, heaters, seed=2, start=START)
        stats = publish(fleet, DEFAULT_MQTT_URL, speed=6000.0, minutes=minutes)
        assert done.wait(10), f"received {len(received)} of {heaters * minutes}"
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert (stats.minutes, stats.published, stats.failed) == (minutes, heaters * minutes, 0)
    readings = []
    for topic, payload in received:
        reading = parse_telemetry(payload)
        assert parse_telemetry_topic(topic) == (gateway, reading.device_id)
        readings.append(reading)
    assert sorted((r.device_id, r.seq) for r in readings) == sorted(
        (device, seq) for device in fleet.device_ids for seq in range(1, minutes + 1)
    )


def test_a_scheduled_fault_shows_in_readings_and_ground_truth_when_it_happens():
    fleet = Fleet("gw-fault", 2, seed=1, start=START)
    fleet.simulator.faults.postpone_all(np.arange(2))
    fleet.simulator.faults.schedule_failure(Component.SENSOR, np.array([0]), hour=2, progression_h=1, variant=UPPER)
    for _ in range(120):
        readings = fleet.step()
    assert fleet.failures == [] and readings[0].error_code == 0
    readings = fleet.step()
    assert [(f.device_id, f.component) for f in fleet.failures] == [("gw-fault-00000", Component.SENSOR)]
    assert readings[0].error_code == ErrorCode.UPPER_TANK_SENSOR
    assert readings[0].tank_upper_temperature in SENSOR_RAILS_C
    assert readings[1].error_code == 0
