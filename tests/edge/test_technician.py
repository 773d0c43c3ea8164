"""Technicians' outcomes: checked against what the gateway knows, linked to the prediction they judge, queued
offline and delivered later. The index and log through real SQLite files; the CLI and the local HTTP endpoint
through a real agent process, a private Mosquitto that goes away, and the cloud's ingest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from cloud.config import CloudConfig
from cloud.ingest.worker import IngestWorker
from cloud.storage import iso, open_database
from edge_agent.agent import EdgeAgent
from edge_agent.cli import edge
from edge_agent.config import AgentConfig
from edge_agent.device_index import DEVICES_FILE, DeviceIndex, GatewayIdentity
from edge_agent.local_api import TOKEN_ENV, TOKEN_FILE, local_token
from edge_agent.model_loader import load_model
from edge_agent.outbox import OUTBOX_FILE, Outbox
from edge_agent.technician import OutcomeRefused, OutcomeRequest, TechnicianLog, UnknownDevice
from firmware_sim.live import Fleet, connect
from shared.messages import OutcomeBatch, Prediction, PredictionType, parse_up
from shared.topics import telemetry_topic
from tests.edge.mqtt_helpers import unique_prefix, wait_for
from tests.edge.releases import build_serving_release
from tests.private_broker import PrivateBroker, free_port

PROJECT = Path(__file__).parents[2]
HORIZON = timedelta(days=14)


def _prediction(device_id: str, made_at: datetime, kind: PredictionType = PredictionType.COMPONENT_FAILURE):
    return Prediction(
        prediction_id=uuid.uuid4().hex,
        device_id=device_id,
        device_type="tank-50",
        prediction_type=kind,
        model_name="m",
        model_version="1.0.0",
        outputs={"none": 1.0},
        latency_ms=1.0,
        made_at=made_at,
    )


@pytest.fixture
def log(tmp_path: Path):
    devices = DeviceIndex(tmp_path / DEVICES_FILE, predictions_per_device=3)
    devices.set_identity(GatewayIdentity("gw-1", "p/iotsphere/v1", HORIZON))
    outbox = Outbox(tmp_path / OUTBOX_FILE)
    technician = TechnicianLog(outbox, devices)
    yield technician
    technician.close()


def test_the_index_keeps_the_newest_failure_predictions_per_heater(log: TechnicianLog):
    now = datetime.now(UTC)
    made = [_prediction("dev-a", now - timedelta(hours=h)) for h in range(6, 0, -1)]
    log.devices.remember_predictions([*made, _prediction("dev-a", now, PredictionType.ANOMALY)])
    assert log.devices.latest_prediction("dev-a", now - HORIZON) == made[-1].prediction_id
    assert [log.devices.device_of(p.prediction_id) for p in made] == [None, None, None, "dev-a", "dev-a", "dev-a"]
    assert log.devices.latest_prediction("dev-a", now - timedelta(minutes=30)) is None, "outside the horizon"


def test_an_outcome_links_to_the_latest_prediction_and_lands_in_the_outbox(log: TechnicianLog):
    now = datetime.now(UTC)
    log.devices.remember_device("dev-a", "tank-50")
    old, latest = _prediction("dev-a", now - timedelta(days=2)), _prediction("dev-a", now - timedelta(hours=1))
    log.devices.remember_predictions([old, latest])

    outcome = log.record(OutcomeRequest(device="dev-a", component="thermostat", result="failed", technician="Ana"))
    assert outcome.prediction_id == latest.prediction_id
    explicit = log.record(
        OutcomeRequest(device="dev-a", component="sediment", result="ok", prediction_id=old.prediction_id)
    )
    assert explicit.prediction_id == old.prediction_id

    rows = log.outbox.pending()
    assert [row.topic for row in rows] == ["p/iotsphere/v1/gw/gw-1/up/outcomes"] * 2
    sent = [parse_up(row.channel, row.payload) for row in rows]
    assert all(isinstance(batch, OutcomeBatch) and batch.gateway_id == "gw-1" for batch in sent)
    assert [batch.outcomes[0] for batch in sent] == [outcome, explicit]


def test_unknown_heaters_and_other_heaters_predictions_are_refused_and_nothing_is_queued(log: TechnicianLog):
    log.devices.remember_device("dev-a", "tank-50")
    log.devices.remember_device("dev-b", "tank-50")
    of_b = _prediction("dev-b", datetime.now(UTC))
    log.devices.remember_predictions([of_b])
    with pytest.raises(UnknownDevice, match="dev-x"):
        log.record(OutcomeRequest(device="dev-x", component="thermostat", result="ok"))
    with pytest.raises(OutcomeRefused, match="dev-b"):
        log.record(
            OutcomeRequest(device="dev-a", component="thermostat", result="ok", prediction_id=of_b.prediction_id)
        )
    assert log.outbox.depth() == 0


def test_the_token_is_the_configured_one_or_a_private_file(tmp_path: Path):
    token = local_token(tmp_path, None)
    assert len(token) >= 32 and local_token(tmp_path, "  ") == token
    assert (tmp_path / TOKEN_FILE).stat().st_mode & 0o077 == 0, "only the agent's user may read it"
    assert local_token(tmp_path, "from-the-environment") == "from-the-environment"


@pytest.mark.mqtt
def test_edge_run_serves_with_the_token_the_environment_names(tmp_path: Path):
    """``iotsphere edge run`` reads the token with its settings and hands it to the serving process."""
    api_port = free_port()
    agent = _start_agent("gw-token", unique_prefix(), tmp_path / "gw", "mqtt://127.0.0.1:1883", api_port, "s3cret-tok")
    api = f"http://127.0.0.1:{api_port}/outcomes"
    body = {"device": "dev-nowhere", "component": "thermostat", "result": "ok"}
    answers: list[httpx.Response] = []
    try:

        def answered() -> bool:
            try:
                answers.append(httpx.post(api, json=body, headers={"Authorization": "Bearer s3cret-tok"}))
            except httpx.TransportError:
                return False
            return True

        wait_for(answered, timeout=30, what="the technicians' API")
        known = answers[-1]
        assert known.status_code == 404 and "dev-nowhere" in known.json()["detail"]  # past the token check
        assert httpx.post(api, json=body, headers={"Authorization": "Bearer other"}).status_code == 401
        assert not (tmp_path / "gw" / TOKEN_FILE).exists(), "no token file when the environment names one"
    finally:
        _stop_agent(agent)


# -- through the real agent process ----------------------------------------------------------------------


def _start_agent(
    gateway_id: str, prefix: str, data_dir: Path, mqtt_url: str, api_port: int, token: str | None = None
) -> subprocess.Popen:
    arguments = ["run", "--gateway", gateway_id, "--mqtt", mqtt_url, "--data-dir", str(data_dir), "--prefix", prefix]
    arguments += ["--local-api-port", str(api_port), "--status-interval", "1"]
    env = {key: value for key, value in os.environ.items() if key != TOKEN_ENV}
    if token is not None:
        env[TOKEN_ENV] = token
    return subprocess.Popen(
        [sys.executable, "-c", "from edge_agent.cli import edge; edge()", *arguments],
        cwd=PROJECT,
        env={**env, "PYTHONPATH": str(PROJECT)},
    )


def _stop_agent(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0


def _install_model(gateway_id: str, data_dir: Path) -> None:
    """Provision the gateway with an active failure model, as an earlier update would have."""
    agent = EdgeAgent(AgentConfig(gateway_id, data_dir))
    built = build_serving_release()
    agent.store.install(built.release, built.release_bytes, built.onnx_bytes)
    agent.store.activate(load_model(built.onnx_bytes, built.release))
    agent.stop()


def test_outcomes_logged_offline_by_cli_and_http_reach_the_cloud_linked_to_the_prediction(tmp_path: Path):
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    gateway_id, prefix = f"gw-{uuid.uuid4().hex[:8]}", unique_prefix()
    data_dir, api_port = tmp_path / "gw", free_port()
    _install_model(gateway_id, data_dir)
    config = CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=broker.url, topic_prefix=prefix)
    db = open_database(config.database_path)
    ingest = IngestWorker(config, client_id=f"ingest-{uuid.uuid4().hex[:8]}", shared_group=None)
    ingest.start()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    fleet = Fleet(gateway_id, heaters=2, seed=7, start=start)
    dev_a, dev_b = fleet.device_ids
    agent = _start_agent(gateway_id, prefix, data_dir, broker.url, api_port)
    api = f"http://127.0.0.1:{api_port}/outcomes"
    try:
        online = "SELECT count(*) FROM gateways WHERE gateway_id = ? AND online"
        wait_for(lambda: db.execute(online, [gateway_id]).fetchone()[0], timeout=30, what="the agent online")
        sensors = connect(broker.url, f"sensors-{uuid.uuid4().hex[:8]}")
        sent = [
            sensors.publish(telemetry_topic(gateway_id, reading.device_id), reading.to_json(), qos=1)
            for _ in range(15 * 60 + 5)
            for reading in fleet.step()
        ]
        for info in sent:
            info.wait_for_publish(10)
        sensors.disconnect()
        sensors.loop_stop()
        last_window = iso(start + timedelta(hours=15))

        def latest(device_id: str) -> list:
            return db.execute(
                "SELECT prediction_id FROM predictions WHERE device_id = ? AND feature_window_end = ?",
                [device_id, last_window],
            ).fetchall()

        wait_for(lambda: latest(dev_a) and latest(dev_b), timeout=60, what="predictions for the last window")
        expected = {dev_a: latest(dev_a)[0][0], dev_b: latest(dev_b)[0][0]}

        broker.stop()  # the site loses its link; the technician arrives
        token = (data_dir / TOKEN_FILE).read_text().strip()
        auth = {"Authorization": f"Bearer {token}"}
        body = {"device": dev_b, "component": "thermostat", "result": "ok", "technician": "Bo"}
        assert httpx.post(api, json=body).status_code == 401
        assert httpx.post(api, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
        unknown = httpx.post(api, json={**body, "device": "dev-nowhere"}, headers=auth)
        assert unknown.status_code == 404 and "dev-nowhere" in unknown.json()["detail"]
        bad_component = httpx.post(api, json={**body, "component": "flux_capacitor"}, headers=auth)
        assert bad_component.status_code == 400 and "component" in bad_component.json()["detail"]
        wrong_link = httpx.post(api, json={**body, "prediction_id": expected[dev_a]}, headers=auth)
        assert wrong_link.status_code == 400 and dev_a in wrong_link.json()["detail"]
        created = httpx.post(api, json=body, headers=auth)
        assert created.status_code == 201, created.text
        assert created.json()["prediction_id"] == expected[dev_b]

        runner = CliRunner()
        base = ["outcome", "--data-dir", str(data_dir)]
        logged = runner.invoke(
            edge, [*base, "--device", dev_a, "--component", "heating_element", "--result", "failed", "--notes", "burnt"]
        )
        assert logged.exit_code == 0, logged.output
        assert expected[dev_a] in logged.output
        unknown_cli = runner.invoke(edge, [*base, "--device", "dev-nowhere", "--component", "sensor", "--result", "ok"])
        assert unknown_cli.exit_code == 1 and "dev-nowhere" in unknown_cli.output
        bad_cli = runner.invoke(edge, [*base, "--device", dev_a, "--component", "flux_capacitor", "--result", "ok"])
        assert bad_cli.exit_code == 2 and "heating_element" in bad_cli.output

        _stop_agent(agent)  # and the gateway is switched off; the technician logs the replacement anyway
        replaced = runner.invoke(
            edge,
            [*base, "--device", dev_a, "--component", "heating_element", "--result", "replaced"]
            + ["--technician", "Ana", "--prediction-id", expected[dev_a]],
        )
        assert replaced.exit_code == 0, replaced.output

        broker.start()
        agent = _start_agent(gateway_id, prefix, data_dir, broker.url, api_port)

        def outcomes() -> list:
            return db.execute(
                "SELECT device_id, component, result, prediction_id, technician, source FROM outcomes"
                " ORDER BY device_id, result"
            ).fetchall()

        wait_for(lambda: len(outcomes()) >= 3, timeout=60, what="three outcomes in the cloud")
        assert outcomes() == [
            (dev_a, "heating_element", "failed", expected[dev_a], None, "technician"),
            (dev_a, "heating_element", "replaced", expected[dev_a], "Ana", "technician"),
            (dev_b, "thermostat", "ok", expected[dev_b], "Bo", "technician"),
        ]
        assert db.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0
    finally:
        if agent.poll() is None:
            _stop_agent(agent)
        ingest.stop()
        broker.stop()
