"""End to end: a director document on MQTT, TUF over the cloud API, the model active, events and status up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.releases import tuf_repo
from edge_agent.agent import AgentConfig, EdgeAgent
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


@pytest.mark.mqtt
def test_a_retained_director_document_is_applied_and_reported(tmp_path: Path, cloud: Cloud):
    prefix = unique_prefix()
    root = tmp_path / "root.json"
    root.write_bytes(tuf_repo.trusted_root_bytes(cloud.config))
    up = Collector(BROKER, f"{prefix}/gw/{GATEWAY}/up/#")
    desired = down_topic(GATEWAY, Down.DESIRED, prefix)
    up.client.publish(desired, cloud.document(1, {MODEL: cloud.desired(MODEL, "1")}), qos=1, retain=True)
    agent = EdgeAgent(
        AgentConfig(
            GATEWAY,
            tmp_path / "gw",
            mqtt_url=BROKER,
            cloud_url=cloud.url,
            api_key=cloud.gateway_token,
            trusted_root=root,
            prefix=prefix,
            reconnect_delay=(0.1, 0.5),
        )
    )
    agent.start()

    def events() -> list[GatewayEvent]:
        return [GatewayEvent.model_validate_json(m.payload) for m in up.messages if m.topic.endswith("/up/events")]

    try:
        wait_for(lambda: len(events()) >= 2, timeout=20, what="install and activate events")
        assert [(e.kind, e.model_version, e.director_sequence) for e in events()] == [
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
        wait_for(lambda: len(events()) >= 3, timeout=20, what="a reject event")
        assert (events()[-1].kind, events()[-1].rule, events()[-1].director_sequence) == (
            EventKind.REJECT,
            "director.signature",
            2,
        )
        assert agent.store.active()[MODEL].version == "1"
    finally:
        agent.stop()
        up.client.publish(desired, b"", qos=1, retain=True).wait_for_publish(5)
        up.client.publish(f"{prefix}/gw/{GATEWAY}/up/status", b"", qos=1, retain=True).wait_for_publish(5)
        up.close()
