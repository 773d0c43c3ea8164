"""A gateway's last will marks it offline and nothing more: the cloud keeps the models, director sequence and agent
version its last online status reported. Real Mosquitto, a real agent, real TUF updates, the real ingest worker."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.releases import tuf_repo
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from shared.messages import GatewayStatus
from shared.topics import Down, Up, down_topic, up_topic
from tests.edge.mqtt_helpers import Collector
from tests.edge.releases import build_serving_release
from tests.edge.tuf_world import GATEWAY, Cloud, running_cloud
from tests.ingest.helpers import BROKER_URL, wait_for
from tests.rows import count, rows_of

pytestmark = pytest.mark.mqtt

MODEL = "component_failure"

#: the gateway in its own process, so it can die the way a power cut kills it: no DISCONNECT, the broker sends the will
_AGENT = textwrap.dedent(
    """
    import sys, threading
    from datetime import timedelta
    from pathlib import Path
    from edge_agent.agent import EdgeAgent
    from edge_agent.config import AgentConfig

    data, broker, prefix, cloud_url, token, root = sys.argv[1:7]
    agent = EdgeAgent(AgentConfig(sys.argv[7], Path(data), mqtt_url=broker, cloud_url=cloud_url, api_key=token,
                                  trusted_root=Path(root), prefix=prefix, reconnect_delay=(0.1, 0.5),
                                  update_retry=timedelta(seconds=0.3)))
    agent.start()
    threading.Event().wait()
    """
)


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[Cloud]:
    with running_cloud(tmp_path / "cloud") as running:
        running.publish(build_serving_release("1"))
        yield running


def _gateway(db) -> dict | None:
    found = rows_of(db, "gateways", gateway_id=GATEWAY)
    if not found:
        return None
    row = found[0]
    return {
        "online": row["online"],
        "agent_version": row["agent_version"],
        "director_sequence": row["director_sequence"],
        "status": json.loads(row["status_json"]),
    }


def _models(gateway: dict | None) -> list[tuple[str, str | None]]:
    return [(m["model_name"], m["active_version"]) for m in gateway["status"]["models"]] if gateway else []


def test_a_gateway_that_installs_its_first_release_and_dies_keeps_its_state_in_the_cloud(
    tmp_path: Path, cloud: Cloud, config, make_worker, db
):
    prefix = config.topic_prefix
    root = tmp_path / "root.json"
    root.write_bytes(tuf_repo.trusted_root_bytes(cloud.config))
    make_worker().start()
    status_topic = up_topic(GATEWAY, Up.STATUS, prefix)
    watcher = Collector(BROKER_URL, status_topic)
    desired = down_topic(GATEWAY, Down.DESIRED, prefix)
    args = [str(tmp_path / "gw"), BROKER_URL, prefix, cloud.url, cloud.gateway_token, str(root), GATEWAY]
    agent = subprocess.Popen([sys.executable, "-c", _AGENT, *args], cwd=Path(__file__).resolve().parents[2])
    try:
        wait_for(lambda: (_gateway(db) or {}).get("online") == 1, timeout=30, what="the gateway online, no models yet")
        assert _models(_gateway(db)) == [] and _gateway(db)["director_sequence"] is None

        # its first release arrives during the run
        watcher.client.publish(desired, cloud.document(1, {MODEL: cloud.desired(MODEL, "1")}), qos=1, retain=True)
        wait_for(
            lambda: _models(_gateway(db)) == [(MODEL, "1")] and _gateway(db)["director_sequence"] == 1,
            timeout=30,
            what="the status naming release 1 and document 1",
        )
        known = _gateway(db)

        agent.send_signal(signal.SIGKILL)  # dies: its socket closes without DISCONNECT
        agent.wait(10)
        wait_for(lambda: _gateway(db)["online"] == 0, timeout=30, what="the will to mark the gateway offline")
    finally:
        agent.kill()
        agent.wait(10)
        for topic in (desired, status_topic):
            watcher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        watcher.close()

    will = GatewayStatus.model_validate_json([m.payload for m in watcher.messages if m.payload][-1])
    assert (will.online, will.models, will.director_sequence) == (False, [], None)  # the will says only "offline"
    after = _gateway(db)
    assert (after["online"], after["director_sequence"], after["agent_version"]) == (0, 1, known["agent_version"])
    assert _models(after) == [(MODEL, "1")]
    assert (after["status"]["online"], after["status"]["health"]) == (False, "offline")


def test_each_connection_has_its_own_will_so_a_second_death_is_seen_too(tmp_path: Path, config, make_worker, db):
    """Ingest skips a message id it stored before: a will kept from the first connect would not mark the second."""
    make_worker().start()
    status_topic = up_topic(GATEWAY, Up.STATUS, config.topic_prefix)
    watcher = Collector(BROKER_URL, status_topic)
    agent = EdgeAgent(
        AgentConfig(
            GATEWAY, tmp_path / "gw", mqtt_url=BROKER_URL, prefix=config.topic_prefix, reconnect_delay=(0.1, 0.3)
        )
    )
    agent.start()

    def statuses() -> list[GatewayStatus]:
        return [GatewayStatus.model_validate_json(m.payload) for m in watcher.messages if m.payload]

    def stored_statuses() -> int:
        return count(db, "ingested_messages", channel=Up.STATUS.value, gateway_id=GATEWAY)

    try:
        wait_for(lambda: [s.online for s in statuses()] == [True], timeout=20, what="the gateway online")
        agent.link.client.socket().shutdown(socket.SHUT_RDWR)  # the link drops without DISCONNECT; paho reconnects
        wait_for(lambda: [s.online for s in statuses()] == [True, False, True], timeout=20, what="will, then online")
        wait_for(lambda: stored_statuses() == 3, timeout=20, what="the three statuses stored")
        assert _gateway(db)["online"] == 1

        agent.link.client.loop_stop()  # the second time it does not come back
        agent.link.client.socket().shutdown(socket.SHUT_RDWR)
        wait_for(lambda: len(statuses()) == 4, timeout=20, what="the second will")
        wait_for(lambda: _gateway(db)["online"] == 0, timeout=20, what="the second will to mark the gateway offline")
    finally:
        agent._connected.clear()  # paho's loop is stopped, so nothing told the agent it is offline
        agent.stop(drain_seconds=0)
        watcher.client.publish(status_topic, b"", qos=1, retain=True).wait_for_publish(5)
        watcher.close()
    assert len({status.msg_id for status in statuses()}) == 4
