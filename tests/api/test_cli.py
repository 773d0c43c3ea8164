"""The key commands through click, and ``cloud serve`` as a real process with its workers and a real broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
import sqlite_utils
from click.testing import CliRunner

from cloud.api.app import create_app
from cloud.api.cli import list_keys_command, revoke_key_command
from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.storage import open_database
from iotsphere.cli import main
from shared.messages import Prediction, PredictionBatch, PredictionType
from shared.topics import Up, up_topic
from tests.api.conftest import auth
from tests.api.server import ThreadedServer
from tests.postgres_run import database_at
from tests.private_broker import PrivateBroker, free_port, listening


def _create_key(data_dir: Path, *args: str):
    return CliRunner().invoke(main, ["admin", "create-key", *args, "--data-dir", str(data_dir)])


def test_create_key_prints_the_key_once_and_it_works_over_http(config: CloudConfig, db: sqlite_utils.Database) -> None:
    result = _create_key(config.data_dir, "--role", "admin", "--name", "alice")

    assert result.exit_code == 0, result.output
    token = result.stdout.strip()
    assert token.startswith("iots_") and "\n" not in token  # stdout holds the key alone, for scripts
    assert "not shown again" in result.stderr
    with ThreadedServer(create_app(config)) as server:
        response = httpx.get(f"{server.base_url}/api/admin/keys", headers=auth(token))
    assert response.status_code == 200
    assert [(k["name"], k["role"]) for k in response.json()] == [("alice", "admin")]


def test_create_gateway_key_needs_its_gateway(config: CloudConfig, db: sqlite_utils.Database) -> None:
    refused = _create_key(config.data_dir, "--role", "gateway", "--name", "gw")
    created = _create_key(config.data_dir, "--role", "gateway", "--name", "gw", "--gateway", "gw-001")

    assert refused.exit_code == 2
    assert "a gateway key needs the gateway id" in refused.output
    assert created.exit_code == 0 and "for gateway gw-001" in created.stderr


def test_create_key_refuses_an_unknown_role(config: CloudConfig) -> None:
    result = _create_key(config.data_dir, "--role", "root", "--name", "mallory")

    assert result.exit_code == 2
    assert "'root' is not one of" in result.output


def test_list_and_revoke_keys(config: CloudConfig, db: sqlite_utils.Database) -> None:
    token = _create_key(config.data_dir, "--role", "viewer", "--name", "dashboard").stdout.strip()
    key_id = token.split("_")[1]
    runner = CliRunner()

    listed = runner.invoke(list_keys_command, ["--data-dir", str(config.data_dir)])
    revoked = runner.invoke(revoke_key_command, [key_id, "--data-dir", str(config.data_dir)])
    unknown = runner.invoke(revoke_key_command, ["000000000000", "--data-dir", str(config.data_dir)])

    assert listed.exit_code == 0 and key_id in listed.output and "dashboard" in listed.output
    assert token.split("_", 2)[2] not in listed.output
    assert revoked.exit_code == 0 and f"Revoked viewer key {key_id}" in revoked.output
    assert unknown.exit_code == 1 and "no API key with id '000000000000'" in unknown.output
    with ThreadedServer(create_app(config)) as server:
        assert httpx.get(f"{server.base_url}/api/models", headers=auth(token)).status_code == 401


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not listening(port):
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listening on {port}")
        time.sleep(0.05)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """Our own Mosquitto: serve's ingest keeps a persistent session, which must not touch the shared broker."""
    with PrivateBroker(tmp_path / "broker", persistence=False) as private:
        yield private.url


def _prediction_batch() -> PredictionBatch:
    prediction = Prediction(
        prediction_id=uuid.uuid4().hex,
        device_id="wh-serve",
        device_type="tank-50gal-electric",
        prediction_type=PredictionType.COMPONENT_FAILURE,
        model_name="component_failure",
        model_version="1",
        outputs={"heating_element": 0.4},
        latency_ms=2.0,
        made_at=datetime.now(UTC),
    )
    return PredictionBatch(gateway_id="gw-serve", predictions=[prediction])


def _publish(mqtt_url: str, prefix: str, batch: PredictionBatch) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", int(mqtt_url.rsplit(":", 1)[1]))
    client.loop_start()
    try:
        client.publish(up_topic("gw-serve", Up.PREDICTIONS, prefix), batch.to_json(), qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.mqtt
@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_runs_api_ingest_and_publisher_and_stops_cleanly(tmp_path: Path, broker: str, stop_signal) -> None:
    data_dir, port, prefix = tmp_path / "cloud", free_port(), f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1"
    db = open_database(database_at(data_dir / "iotsphere.db"))
    token = KeyStore(db).create(Role.VIEWER, "serve test").token
    db.close()
    command = [sys.executable, "-c", "from iotsphere.cli import main; main()", "cloud", "serve"]
    command += ["--port", str(port), "--data-dir", str(data_dir), "--mqtt", broker]
    env = {"IOTSPHERE_TOPIC_PREFIX": prefix, "PATH": "/usr/bin:/bin", "IOTSPHERE_KEY_PASSPHRASE": ""}
    env |= {name: os.environ[name] for name in ("IOTSPHERE_DATABASE_URL", "IOTSPHERE_FIELD_KEY") if name in os.environ}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_port(port, process)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/health").json()["database_ok"] is True

        batch = _prediction_batch()
        sent = batch.predictions[0]
        url = f"{base}/api/predictions/water-heaters/wh-serve/component_failure"
        deadline, response, resend_at = time.monotonic() + 20, None, 0.0
        while time.monotonic() < deadline:
            if time.monotonic() >= resend_at:  # the API answers before ingest has subscribed: the same msg_id again
                _publish(broker, prefix, batch)  # until it is stored (ingest keeps one copy of a message id)
                resend_at = time.monotonic() + 1.0
            response = httpx.get(url, headers=auth(token))
            if response.status_code == 200:
                break
            time.sleep(0.1)
        assert response is not None and response.status_code == 200, response and response.text
        assert response.json()["prediction_id"] == sent.prediction_id  # ingested by the worker in the same process
    finally:
        process.send_signal(stop_signal)
        _, stderr = process.communicate(timeout=30)

    assert process.returncode == 0, stderr
    assert "stopped DirectorPublisher" in stderr and "stopped IngestWorker" in stderr
    assert stderr.index("stopped DirectorPublisher") < stderr.index("stopped IngestWorker")
