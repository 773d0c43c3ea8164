"""The broker ACLs shipped in deploy/mosquitto confine each gateway to its own topics (real Mosquitto)."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from shared.topics import Down, Up, down_topic, telemetry_topic, up_topic
from tests.private_broker import PrivateBroker

ACL = Path(__file__).parents[2] / "deploy" / "mosquitto" / "acl"
USERS = {"cloud": "cloud-secret", "gw-1": "gw1-secret", "gw-2": "gw2-secret"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory) -> PrivateBroker:
    folder = tmp_path_factory.mktemp("acl-broker")
    passwords = folder / "passwords"
    passwords.touch()
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True)
    passwords.chmod(0o600)
    config = f"allow_anonymous false\npassword_file {passwords}\nacl_file {ACL}\n"
    with PrivateBroker(folder, extra_config=config, persistence=False) as private:
        yield private


class Client:
    """A logged-in paho client that records what it receives."""

    def __init__(self, broker: PrivateBroker, user: str, password: str | None = None):
        self.received: list[tuple[str, bytes]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{uuid.uuid4().hex[:6]}")
        self.client.username_pw_set(user, password or USERS[user])
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)
        time.sleep(0.2)

    def publish(self, topic: str, payload: bytes = b"x") -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _settle(*clients: Client, seconds: float = 0.5) -> None:
    time.sleep(seconds)
    for client in clients:
        client.close()


def test_gateway_writes_only_its_own_up_topics(broker):
    cloud, gw1 = Client(broker, "cloud"), Client(broker, "gw-1")
    cloud.subscribe("iotsphere/v1/gw/+/up/#")
    gw1.publish(up_topic("gw-1", Up.STATUS), b"mine")
    gw1.publish(up_topic("gw-2", Up.STATUS), b"forged for gw-2")
    gw1.publish(down_topic("gw-1", Down.DESIRED), b"forged desired state")
    _settle(cloud, gw1)
    assert cloud.received == [(up_topic("gw-1", Up.STATUS), b"mine")]


def test_gateway_reads_only_its_own_down_topics_and_site(broker):
    gw1 = Client(broker, "gw-1")
    for topic in ("iotsphere/v1/gw/+/down/#", "iotsphere/v1/gw/+/up/#", "site/+/heaters/+/telemetry"):
        gw1.subscribe(topic)
    cloud, gw2 = Client(broker, "cloud"), Client(broker, "gw-2")
    cloud.publish(down_topic("gw-1", Down.DESIRED), b"for gw-1")
    cloud.publish(down_topic("gw-2", Down.DESIRED), b"for gw-2")
    gw2.publish(up_topic("gw-2", Up.PREDICTIONS), b"gw-2 data")
    gw2.publish(telemetry_topic("gw-2", "wh-9"), b"gw-2 heater")
    gw1.publish(telemetry_topic("gw-1", "wh-1"), b"gw-1 heater")
    _settle(gw1, cloud, gw2)
    assert sorted(gw1.received) == sorted(
        [(down_topic("gw-1", Down.DESIRED), b"for gw-1"), (telemetry_topic("gw-1", "wh-1"), b"gw-1 heater")]
    )


def test_wrong_password_is_refused(broker):
    outcomes: list[str] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.username_pw_set("gw-1", "not the password")
    client.on_connect = lambda _c, _u, _f, reason, _p: outcomes.append(str(reason))
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    deadline = time.monotonic() + 5
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    assert outcomes and outcomes[0] == "Not authorized"
