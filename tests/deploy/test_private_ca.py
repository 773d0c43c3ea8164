"""The shipped broker (TLS, passwords, ACLs) with secrets from deploy/make_secrets.py: cloud and gateway clients
trust its private CA through IOTSPHERE_MQTT_CA, and nothing else gets in (real Mosquitto, real TLS)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from cloud.releases.publisher import PublishError, RetainedPublisher
from edge_agent.mqtt_link import MqttLink
from iotsphere.cli import main
from shared.mqtt_url import apply_endpoint, parse_mqtt_url
from shared.settings import SettingsError
from shared.topics import Down, Up, down_topic, up_topic, up_wildcard
from tests.deploy.shipped_broker import ShippedBroker, compose_env, make_secrets
from tests.edge.mqtt_helpers import Collector, wait_for


@pytest.fixture(scope="module")
def deploy(tmp_path_factory):
    out = tmp_path_factory.mktemp("deploy")
    made = make_secrets(out, "--gateway", "gw-1", "--gateway", "gw-2")
    assert made.returncode == 0, made.stderr
    return out


@pytest.fixture(scope="module")
def broker(deploy, tmp_path_factory):
    with ShippedBroker(tmp_path_factory.mktemp("broker"), deploy) as running:
        yield running


@pytest.fixture
def urls(broker, deploy):
    passwords = compose_env(deploy)
    return {
        user: broker.mqtts_url(user, passwords[f"{key}_MQTT_PASSWORD"])
        for user, key in (("cloud", "CLOUD"), ("ingest", "INGEST"), ("gw-1", "GW1"), ("gw-2", "GW2"))
    }


@pytest.fixture
def trusted(monkeypatch, deploy) -> Path:
    """The private CA, in IOTSPHERE_MQTT_CA as the cloud's processes and ``iotsphere edge run`` read it."""
    ca = deploy / "mosquitto" / "certs" / "ca.crt"
    monkeypatch.setenv("IOTSPHERE_MQTT_CA", str(ca))
    return ca


class Gateway:
    """The edge agent's MQTT link, subscribed to its down topics, given the CA as ``iotsphere edge run`` gives it."""

    def __init__(self, url: str, gateway_id: str, ca_file: Path):
        self.received: list[tuple[str, bytes]] = []
        self.subscribed = threading.Event()
        topic = down_topic(gateway_id, Down.DESIRED).rsplit("/", 1)[0] + "/#"
        self.link = MqttLink(
            url,
            f"{gateway_id}-{time.monotonic_ns()}",
            on_connected=lambda c: c.subscribe(topic, 1),
            on_disconnected=lambda: None,
            ca_file=ca_file,
        )
        self.link.client.on_subscribe = lambda *args: self.subscribed.set()
        self.link.client.on_message = lambda _c, _u, m: self.received.append((m.topic, m.payload))
        self.link.start()
        assert self.subscribed.wait(10), "the gateway did not connect and subscribe"

    def publish(self, topic: str, payload: bytes) -> None:
        self.link.client.publish(topic, payload, qos=1).wait_for_publish(5)


def test_cloud_and_gateway_verify_the_private_ca_and_exchange_messages(trusted, urls):
    ingest = Collector(urls["ingest"].replace("localhost", "127.0.0.1"), up_wildcard())  # the IP is in the SAN too
    with RetainedPublisher(urls["cloud"]) as cloud:
        cloud.publish(down_topic("gw-1", Down.DESIRED), b"desired for gw-1")
    gateway = Gateway(urls["gw-1"], "gw-1", trusted)
    gateway.publish(up_topic("gw-1", Up.STATUS), b"status of gw-1")
    try:
        wait_for(lambda: ingest.payloads() == [b"status of gw-1"], what="the gateway's status at the cloud")
        wait_for(lambda: gateway.received, what="the retained desired state at the gateway")
        assert gateway.received == [(down_topic("gw-1", Down.DESIRED), b"desired for gw-1")]
    finally:
        gateway.link.stop()
        ingest.close()


def test_without_the_ca_the_broker_certificate_fails_verification_and_says_what_to_set(monkeypatch, urls, caplog):
    monkeypatch.delenv("IOTSPHERE_MQTT_CA", raising=False)
    with pytest.raises(PublishError, match="TLS certificate verify failed .*IOTSPHERE_MQTT_CA"):
        RetainedPublisher(urls["cloud"]).__enter__()

    link = MqttLink(urls["gw-1"], "gw-1-no-ca", on_connected=lambda c: None, on_disconnected=lambda: None)
    link.start()
    try:
        wait_for(lambda: "cannot connect to the MQTT broker" in caplog.text, what="the gateway's connect failure")
    finally:
        link.stop()
    assert "TLS certificate verify failed (" in caplog.text and "IOTSPHERE_MQTT_CA" in caplog.text


def test_a_gateway_reaches_only_its_own_topics_and_ingest_cannot_direct_gateways(trusted, urls):
    cloud = Collector(urls["cloud"], up_wildcard())
    gw2 = Gateway(urls["gw-2"], "gw-2", trusted)
    gw1 = Gateway(urls["gw-1"], "gw-1", trusted)
    gw1.publish(up_topic("gw-2", Up.STATUS), b"forged by gw-1")
    gw1.publish(down_topic("gw-2", Down.DESIRED), b"forged desired state")
    ingest = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    apply_endpoint(ingest, parse_mqtt_url(urls["ingest"]))
    ingest.connect("localhost", parse_mqtt_url(urls["ingest"]).port)
    ingest.loop_start()
    ingest.publish(down_topic("gw-2", Down.DESIRED), b"desired state from ingest", qos=1).wait_for_publish(5)
    gw2.publish(up_topic("gw-2", Up.STATUS), b"gw-2's own")
    try:
        wait_for(lambda: b"gw-2's own" in cloud.payloads(), what="gw-2's own status")
        assert cloud.payloads() == [b"gw-2's own"]
        assert gw2.received == []
    finally:
        ingest.disconnect()
        ingest.loop_stop()
        for gateway in (gw1, gw2):
            gateway.link.stop()
        cloud.close()


def test_a_wrong_password_is_refused_over_tls(trusted, broker):
    with pytest.raises(PublishError, match="Not authorized"):
        RetainedPublisher(broker.mqtts_url("gw-1", "not the password")).__enter__()


def test_a_ca_setting_no_tls_can_load_is_named(monkeypatch, tmp_path, urls):
    not_pem = tmp_path / "ca.crt"
    not_pem.write_text("not a certificate\n")
    monkeypatch.setenv("IOTSPHERE_MQTT_CA", str(not_pem))
    with pytest.raises(SettingsError, match=f"IOTSPHERE_MQTT_CA={not_pem} holds no PEM certificate"):
        RetainedPublisher(urls["cloud"])
    monkeypatch.setenv("IOTSPHERE_MQTT_CA", str(tmp_path / "missing.crt"))
    with pytest.raises(SettingsError, match="IOTSPHERE_MQTT_CA must be an existing file"):
        RetainedPublisher(urls["cloud"])


@pytest.mark.parametrize(
    "command",
    [
        ["sim", "run", "--gateway", "gw-1", "--heaters", "1", "--duration", "1", "--mqtt", "mqtts://127.0.0.1:1"],
        ["edge", "run", "--gateway", "gw-1", "--mqtt", "mqtts://127.0.0.1:1"],
    ],
    ids=["sim", "edge"],
)
@pytest.mark.parametrize("ca", ["not-pem", "missing"])
def test_a_bad_ca_setting_is_one_line_from_the_cli(tmp_path, command, ca):
    path = tmp_path / "ca.crt"
    if ca == "not-pem":
        path.write_text("not a certificate\n")
    data_dir = ["--data-dir", str(tmp_path / "edge")] if command[0] == "edge" else []
    result = CliRunner().invoke(main, command + data_dir, env={"IOTSPHERE_MQTT_CA": str(path)})
    assert result.exit_code in (1, 2), result.output
    assert "IOTSPHERE_MQTT_CA" in result.output and not isinstance(result.exception, ValueError)
