"""``cloud serve``, ``cloud ingest`` and ``train worker`` as real processes: /metrics, live and ready, readiness
following the broker, ``iotsphere cloud health`` exit codes, and JSON log lines without secrets."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.storage import open_database
from shared.topics import Up, up_topic
from tests.api.conftest import auth
from tests.observability.scrape import parse, value
from tests.private_broker import PrivateBroker, free_port, listening

#: in the broker URL the processes get: it must never reach a log line
MQTT_PASSWORD = "mqtt-pass-" + uuid.uuid4().hex[:8]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A Mosquitto of our own, to stop under the running process (anonymous: any credentials are let in)."""
    with PrivateBroker(tmp_path / "broker", persistence=False) as private:
        yield private


def _url_with_password(broker: PrivateBroker) -> str:
    return f"mqtt://obs:{MQTT_PASSWORD}@127.0.0.1:{broker.port}"


def _publish(broker: PrivateBroker, topic: str, payload: bytes) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def _start(arguments: list[str], env: dict[str, str], port: int) -> subprocess.Popen:
    command = [sys.executable, "-c", "from iotsphere.cli import main; main()", *arguments]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"not listening on {port}: {process.communicate(timeout=10)}")
        time.sleep(0.05)
    return process


def _stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    return stderr


def _health(*arguments: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from iotsphere.cli import main; main()", "cloud", "health", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})


def _wait_ready(base: str, ready: bool, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.get(f"{base}/readyz")
        if (answer.status_code == 200) == ready or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def _json_lines(stderr: str) -> list[dict]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines
    return [json.loads(line) for line in lines]  # every line is one JSON object, or this raises


def _environment(prefix: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "IOTSPHERE_TOPIC_PREFIX": prefix,
        "IOTSPHERE_KEY_PASSPHRASE": "",
        "IOTSPHERE_LOG_FORMAT": "json",
    }


@pytest.mark.mqtt
def test_serve_answers_metrics_live_and_ready_and_turns_unready_without_its_broker(
    tmp_path: Path, broker: PrivateBroker
) -> None:
    data_dir, port = tmp_path / "cloud", free_port()
    db = open_database(data_dir / "iotsphere.db")
    token = KeyStore(db).create(Role.VIEWER, "observability test").token
    db.conn.close()
    arguments = [
        "cloud",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--mqtt",
        _url_with_password(broker),
    ]
    process = _start(arguments, _environment(f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1"), port)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(base, ready=True)
        assert ready.status_code == 200, ready.text
        names = {check["name"] for check in ready.json()["checks"]}
        assert {"database", "migrations", "broker:iotsphere-ingest", "heartbeat:ingest-iotsphere-ingest"} <= names
        assert {
            "heartbeat:director-publisher",
            "heartbeat:training-worker",
        } <= names  # the rollout worker idles: no keys
        assert httpx.get(f"{base}/healthz").status_code == 200
        samples = parse(httpx.get(f"{base}/metrics", headers={"X-Request-ID": "scrape-1", **auth(token)}).text)
        assert value(samples, "iotsphere_broker_connected", client="iotsphere-ingest") == 1
        assert value(samples, "iotsphere_health_check_ok", check="heartbeat:training-worker") == 1
        assert _health("--url", base).returncode == 0

        broker.stop()
        unready = _wait_ready(base, ready=False)
        assert unready.status_code == 503, unready.text
        failing = [check["name"] for check in unready.json()["checks"] if not check["ok"]]
        assert failing == ["broker:iotsphere-ingest"]
        assert httpx.get(f"{base}/healthz").status_code == 200  # a broker outage is no reason to restart
        samples = parse(httpx.get(f"{base}/metrics").text)
        assert value(samples, "iotsphere_broker_connected", client="iotsphere-ingest") == 0
        answer = _health("--url", base)
        assert answer.returncode == 1
        assert "FAIL broker:iotsphere-ingest: not connected to the broker" in answer.stdout.splitlines()

        broker.start()
        assert _wait_ready(base, ready=True, timeout=60).status_code == 200
    finally:
        stderr = _stop(process)

    lines = _json_lines(stderr)
    assert {"time", "level", "role", "logger", "message", "request_id"} <= set(lines[0])
    assert {line["role"] for line in lines} == {"api"}
    assert any(line["request_id"] == "scrape-1" and "/metrics" in line["message"] for line in lines)
    assert MQTT_PASSWORD not in stderr and token not in stderr


@pytest.mark.mqtt
def test_cloud_ingest_serves_its_own_metrics_and_health(tmp_path: Path, broker: PrivateBroker) -> None:
    data_dir, port = tmp_path / "cloud", free_port()
    open_database(data_dir / "iotsphere.db").conn.close()
    arguments = ["cloud", "ingest", "--data-dir", str(data_dir), "--mqtt", _url_with_password(broker)]
    arguments += ["--metrics-address", f"127.0.0.1:{port}", "--client-id", "obs-ingest"]
    prefix = f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1"
    process = _start(arguments, _environment(prefix), port)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait_ready(base, ready=True).status_code == 200
        _publish(broker, up_topic("gw-logs", Up.STATUS, prefix), b"{not json")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            samples = parse(httpx.get(f"{base}/metrics").text)
            if value(samples, "iotsphere_ingest_dead_letters_total", reason="malformed"):
                break
            time.sleep(0.1)
        assert value(samples, "iotsphere_ingest_dead_letters_total", reason="malformed") == 1
        assert value(samples, "iotsphere_broker_connected", client="obs-ingest") == 1
        assert ("iotsphere_gateways", frozenset({("state", "online")})) not in samples  # the API's to export
        checks = _health("--url", base, "--json")
        assert checks.returncode == 0 and json.loads(checks.stdout)["ok"] is True
        assert _health("--url", base, "--live").returncode == 0
    finally:
        stderr = _stop(process)

    lines = _json_lines("\n".join(line for line in stderr.splitlines() if line.startswith("{")))
    assert {line["role"] for line in lines} == {"ingest"}
    assert any(line.get("gateway_id") == "gw-logs" and line["level"] == "WARNING" for line in lines)
    assert MQTT_PASSWORD not in stderr


def test_health_without_url_checks_database_migrations_and_broker(tmp_path: Path, broker: PrivateBroker) -> None:
    data_dir = tmp_path / "cloud"
    open_database(data_dir / "iotsphere.db").conn.close()

    ready = _health("--data-dir", str(data_dir), "--mqtt", broker.url)
    no_broker = _health("--data-dir", str(data_dir), "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--json")
    no_database = _health("--data-dir", str(tmp_path / "elsewhere"), "--mqtt", broker.url)
    process_gone = _health("--url", f"http://127.0.0.1:{free_port()}")

    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert [line.split()[1] for line in ready.stdout.splitlines()] == ["database:", "migrations:", "broker:"]
    assert no_broker.returncode == 1
    report = json.loads(no_broker.stdout)
    assert report["ok"] is False
    assert [(c["name"], c["ok"]) for c in report["checks"]] == [
        ("database", True),
        ("migrations", True),
        ("broker", False),
    ]
    assert no_database.returncode == 1 and no_database.stdout.startswith("FAIL database:")
    assert process_gone.returncode == 1 and process_gone.stdout.startswith("FAIL process:")
    assert "Traceback" not in no_broker.stderr + no_database.stderr + process_gone.stderr


def test_the_training_worker_serves_its_own_metrics_and_health(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "cloud", free_port()
    open_database(data_dir / "iotsphere.db").conn.close()
    arguments = ["train", "worker", "--data-dir", str(data_dir), "--metrics-address", f"127.0.0.1:{port}"]
    process = _start(arguments, _environment(f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1"), port)
    base = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(base, ready=True)
        assert ready.status_code == 200, ready.text
        assert {"database", "migrations", "heartbeat:training-worker"} <= {c["name"] for c in ready.json()["checks"]}
        assert httpx.get(f"{base}/healthz").status_code == 200
        metrics = httpx.get(f"{base}/metrics")
        assert value(parse(metrics.text), "iotsphere_health_check_ok", check="heartbeat:training-worker") == 1
    finally:
        stderr = _stop(process)
    assert {line["role"] for line in _json_lines(stderr)} == {"training"}
