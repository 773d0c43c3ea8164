"""The agent: real simulated telemetry in, features and predictions out through the outbox and Mosquitto."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_agent.agent import EdgeAgent, split_to_fit
from edge_agent.config import AgentConfig
from edge_agent.model_loader import load_model
from firmware_sim.live import Fleet
from shared.features import FEATURE_NAMES, FEATURE_SET_VERSION
from shared.messages import MAX_PAYLOAD_BYTES, FeatureBatch, FeatureRow, GatewayStatus, PredictionBatch, parse_up
from shared.topics import Up, telemetry_topic
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for
from tests.edge.releases import LABELS, build_serving_release

BROKER = "mqtt://127.0.0.1:1883"
START = datetime(2026, 3, 1, tzinfo=UTC)


def _gateway_id() -> str:
    return f"gw-{uuid.uuid4().hex[:8]}"


def _fleet_minutes(gateway_id: str, minutes: int, heaters: int = 3) -> list:
    fleet = Fleet(gateway_id, heaters=heaters, seed=2, start=START)
    return [reading for _ in range(minutes) for reading in fleet.step()]


def _outbox_messages(agent: EdgeAgent, channel: Up) -> list:
    return [parse_up(row.channel, row.payload) for row in agent.outbox.pending(limit=10_000) if row.channel == channel]


def _install(agent: EdgeAgent) -> None:
    built = build_serving_release()
    agent.store.install(built.release, built.release_bytes, built.onnx_bytes)
    agent.store.activate(load_model(built.onnx_bytes, built.release))


def test_in_process_readings_become_feature_and_prediction_batches(tmp_path: Path):
    gateway_id = _gateway_id()
    agent = EdgeAgent(AgentConfig(gateway_id, tmp_path / "gw", feature_interval=timedelta(hours=6)))
    _install(agent)
    agent.start()
    try:
        batches = agent.run_in_process(_fleet_minutes(gateway_id, 26 * 60))
        features: list[FeatureBatch] = _outbox_messages(agent, Up.FEATURES)
        predictions: list[PredictionBatch] = _outbox_messages(agent, Up.PREDICTIONS)
    finally:
        agent.stop()

    # boundaries at 06, 12, 18, 00 and 06 the next day, each once the grace after it has passed
    assert batches == len(features) == 4
    assert [b.rows[0].window_end for b in features] == [START + timedelta(hours=h) for h in (6, 12, 18, 24)]
    assert all(b.feature_set_version == FEATURE_SET_VERSION and b.feature_names == FEATURE_NAMES for b in features)
    assert all(len(b.rows) == 3 for b in features)
    coverage = [b.rows[0].values[0] for b in features]
    assert coverage == pytest.approx([6 / 24, 12 / 24, 18 / 24, 1.0], abs=1e-3)
    # a quarter-day window is too sparse to predict from; from half a day on every heater gets one
    assert [p.feature_window_end for b in predictions for p in b.predictions] == [
        START + timedelta(hours=h) for h in (12, 18, 24) for _ in range(3)
    ]
    assert all(list(p.outputs) == LABELS for b in predictions for p in b.predictions)


def test_a_gateway_without_a_model_still_sends_features(tmp_path: Path):
    gateway_id = _gateway_id()
    agent = EdgeAgent(AgentConfig(gateway_id, tmp_path / "gw", feature_interval=timedelta(hours=6)))
    agent.start()
    try:
        agent.run_in_process(_fleet_minutes(gateway_id, 13 * 60, heaters=2))
        assert len(_outbox_messages(agent, Up.FEATURES)) == 2
        assert _outbox_messages(agent, Up.PREDICTIONS) == []
    finally:
        agent.stop()


@pytest.mark.mqtt
def test_bad_telemetry_is_counted_and_kept_and_the_agent_goes_on(tmp_path: Path):
    gateway_id, prefix = _gateway_id(), unique_prefix()
    up = Collector(BROKER, f"{prefix}/gw/{gateway_id}/up/#")
    agent = EdgeAgent(
        AgentConfig(
            gateway_id,
            tmp_path / "gw",
            mqtt_url=BROKER,
            prefix=prefix,
            feature_interval=timedelta(hours=1),
            reconnect_delay=(0.1, 0.5),
        )
    )
    agent.start()
    readings = _fleet_minutes(gateway_id, 63, heaters=2)
    good = [(telemetry_topic(gateway_id, r.device_id), r.to_json()) for r in readings]
    someone_else = telemetry_topic(gateway_id, "wh-intruder")
    bad = [
        (good[0][0], b"not json at all"),
        (good[0][0], json.dumps({**json.loads(good[0][1]), "dhw_temperature": 900}).encode()),  # off the sensor's scale
        (someone_else, good[1][1]),  # a reading from another heater's topic
        (good[0][0], b"\xff\xfe" * 10),
    ]
    try:
        wait_for(agent._connected.is_set, what="the agent to connect")
        for topic, payload in good[:60] + bad + good[60:]:
            up.client.publish(topic, payload, qos=1)

        wait_for(lambda: agent.quarantine.counts["bad_telemetry"] == 4, what="four bad messages counted")
        wait_for(lambda: any(m.topic.endswith("/up/features") for m in up.messages), what="a feature batch")
        kept = agent.quarantine.recent()
        assert [m.payload for m in kept][0] == b"not json at all"
        assert "wh-intruder" in kept[2].reason
        statuses = [GatewayStatus.model_validate_json(m.payload) for m in up.messages if m.topic.endswith("/status")]
        assert statuses and statuses[0].online
    finally:
        agent.stop()
        up.close()
    offline = Collector(BROKER, f"{prefix}/gw/{gateway_id}/up/status")  # retained: the last status
    try:
        wait_for(lambda: offline.messages, what="the retained status")
        final = GatewayStatus.model_validate_json(offline.messages[-1].payload)
        assert final.online is False and final.dropped == {"bad_telemetry": 4}
    finally:
        offline.client.publish(f"{prefix}/gw/{gateway_id}/up/status", b"", qos=1, retain=True).wait_for_publish(5)
        offline.close()


def test_large_batches_are_split_under_the_cloud_payload_cap():
    rows = [
        FeatureRow(device_id=f"wh-{i:04d}", device_type="nwp500-50", window_end=START, values=[1 / 3 + i] * 32)
        for i in range(1200)
    ]
    names = [f"f{j}" for j in range(32)]

    def build(chunk):
        return FeatureBatch(gateway_id="gw-1", feature_set_version="v1", feature_names=names, rows=chunk)

    messages = split_to_fit(rows, build)
    assert all(len(m.to_json()) <= MAX_PAYLOAD_BYTES for m in messages)
    assert [r.device_id for m in messages for r in m.rows] == [r.device_id for r in rows]
    assert len(build(rows[:500]).to_json()) > MAX_PAYLOAD_BYTES  # so splitting was needed
