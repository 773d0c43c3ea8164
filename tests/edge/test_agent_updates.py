"""End to end: a director document on MQTT, TUF over the cloud API, the model active, events and status up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cloud.releases import tuf_repo
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from shared.messages import EventKind, GatewayEvent, GatewayStatus
from shared.signing import generate_private_key
from shared.topics import Down, down_topic
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for
from tests.edge.releases import build_serving_release
from tests.edge.tuf_world import GATEWAY, Cloud, running_cloud

BROKER = "mqtt://127.0.0.1:1883"
MODEL = "component_failure"


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path / "cloud") as running:
        running.publish(build_serving_release("1"))
        yield running


def _agent(tmp_path: Path, cloud: Cloud, prefix: str) -> EdgeAgent:
    root = tmp_path / "root.json"
    root.write_bytes(tuf_repo.trusted_root_bytes(cloud.config))
    config = AgentConfig(
        GATEWAY,
        tmp_path / "gw",
        mqtt_url=BROKER,
        cloud_url=cloud.url,
        api_key=cloud.gateway_token,
        trusted_root=root,
        prefix=prefix,
        reconnect_delay=(0.1, 0.5),
        update_retry=timedelta(seconds=0.3),
    )
    return EdgeAgent(config)


def _events(up: Collector) -> list[GatewayEvent]:
    return [GatewayEvent.model_validate_json(m.payload) for m in up.messages if m.topic.endswith("/up/events")]


def _clear_retained(up: Collector, prefix: str) -> None:
    for topic in (down_topic(GATEWAY, Down.DESIRED, prefix), f"{prefix}/gw/{GATEWAY}/up/status"):
        up.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)


@pytest.mark.mqtt
def test_a_retained_director_document_is_applied_and_reported(tmp_path: Path, cloud: Cloud):
    prefix = unique_prefix()
    up = Collector(BROKER, f"{prefix}/gw/{GATEWAY}/up/#")
    desired = down_topic(GATEWAY, Down.DESIRED, prefix)
    up.client.publish(desired, cloud.document(1, {MODEL: cloud.desired(MODEL, "1")}), qos=1, retain=True)
    agent = _agent(tmp_path, cloud, prefix)
    agent.start()

    def events() -> list[GatewayEvent]:
        return _events(up)

    try:
        wait_for(lambda: len(events()) >= 3, timeout=20, what="download, install and activate events")
        assert [(e.kind, e.model_version, e.director_sequence) for e in events()] == [
            (EventKind.DOWNLOAD, "1", 1),
            (EventKind.INSTALL, "1", 1),
            (EventKind.ACTIVATE, "1", 1),
        ]
        assert agent.store.active()[MODEL].version == "1"

        def latest_status() -> GatewayStatus:
            payloads = [m.payload for m in up.messages if m.topic.endswith("/up/status")]
            return GatewayStatus.model_validate_json(payloads[-1])

        wait_for(lambda: latest_status().director_sequence == 1, what="status with the accepted sequence")
        assert [(m.model_name, m.active_version) for m in latest_status().models] == [(MODEL, "1")]

        forged = cloud.document(2, {MODEL: cloud.desired(MODEL, "1")}, key=generate_private_key())
        up.client.publish(desired, forged, qos=1, retain=True)
        wait_for(lambda: len(events()) >= 4, timeout=20, what="a reject event")
        assert (events()[-1].kind, events()[-1].rule, events()[-1].director_sequence) == (
            EventKind.REJECT,
            "director.signature",
            2,
        )
        assert agent.store.active()[MODEL].version == "1"
    finally:
        agent.stop()
        _clear_retained(up, prefix)
        up.close()


@pytest.mark.mqtt
def test_a_document_deferred_while_the_cloud_is_unreachable_is_applied_once_it_is_back(tmp_path: Path, cloud: Cloud):
    prefix = unique_prefix()
    up = Collector(BROKER, f"{prefix}/gw/{GATEWAY}/up/#")
    document = cloud.document(1, {MODEL: cloud.desired(MODEL, "1")})
    timestamp = cloud.config.tuf_dir / "metadata" / "timestamp.json"
    good = timestamp.read_bytes()
    agent = _agent(tmp_path, cloud, prefix)
    timestamp.rename(timestamp.with_name("timestamp.json.away"))  # the repository answers 404 for now
    agent.start()
    try:
        up.client.publish(down_topic(GATEWAY, Down.DESIRED, prefix), document, qos=1, retain=True)
        wait_for(lambda: _events(up), timeout=20, what="a reject event")
        assert (_events(up)[0].kind, _events(up)[0].rule) == (EventKind.REJECT, "tuf.refresh")

        timestamp.write_bytes(good)
        wait_for(lambda: _events(up)[-1].kind is EventKind.ACTIVATE, timeout=20, what="the retried document to apply")
        assert agent.store.active()[MODEL].version == "1"
    finally:
        agent.stop()
        _clear_retained(up, prefix)
        up.close()
