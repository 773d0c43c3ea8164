"""Promotion and rollback through real HTTP: signed director documents retained on the real Mosquitto."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.registry import MLModelRegistry
from cloud.releases import keystore, tuf_repo
from cloud.releases.model_rows import record_release
from cloud.storage import open_database
from iotsphere.cli import main
from shared.director import DirectorDocument, verify_director
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.releases.conftest import (  # noqa: F401 (fixture)
    PASSPHRASE,
    clear_retained,
    onnx_models,
    released_cloud,
)
from tests.rows import update_rows

pytestmark = pytest.mark.mqtt

NAME = "component_failure"
GATEWAY = "gw-reg-1"


@pytest.fixture
def released(tmp_path: Path, onnx_models: dict[int, bytes], monkeypatch) -> Iterator[CloudConfig]:  # noqa: F811
    """Versions 1 and 2 signed into TUF and recorded as released; one gateway seen; topics cleared afterwards."""
    config = released_cloud(tmp_path, onnx_models, [GATEWAY], NAME)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    yield config
    clear_retained(config, [GATEWAY])


@pytest.fixture
def cloud(released: CloudConfig) -> Iterator[ServedCloud]:
    with served_cloud(released) as served:
        yield served


def retained_document(config: CloudConfig, gateway_id: str, timeout: float = 10.0) -> DirectorDocument:
    """Subscribe as the gateway does when it comes online and return the retained ``down/desired`` document."""
    received: list[DirectorDocument] = []
    done = threading.Event()

    def on_message(client, userdata, message):
        if message.retain and message.payload:
            received.append(DirectorDocument.model_validate_json(message.payload))
            done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"reg-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{config.topic_prefix}/gw/{gateway_id}/down/desired", 1)
    client.on_message = on_message
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        assert done.wait(timeout), "no retained director document"
    finally:
        client.disconnect()
        client.loop_stop()
    return received[0]


def trusted_director_keys(config: CloudConfig) -> dict:
    key = keystore.director_key(config.keys_dir, PASSPHRASE)
    return {keystore.key_info("director", key).keyid: key.public_key()}


def test_promotion_and_rollback_publish_verifiable_retained_documents(cloud: ServedCloud):
    operator = auth(cloud.tokens[Role.OPERATOR])
    trusted = trusted_director_keys(cloud.config)

    promoted = cloud.http.post(f"/api/models/{NAME}/1/promote", json={"reason": "first model"}, headers=operator)
    assert promoted.status_code == 200, promoted.text
    [directed] = promoted.json()["directed"]
    first = retained_document(cloud.config, GATEWAY)
    accepted = verify_director(first.to_json(), trusted, GATEWAY, last_sequence=None)
    assert accepted.signed.sequence == directed["sequence"]
    assert accepted.signed.models[NAME].version == "1"

    cloud.http.post(f"/api/models/{NAME}/2/promote", json={"reason": "better"}, headers=operator).raise_for_status()
    second = verify_director(
        retained_document(cloud.config, GATEWAY).to_json(), trusted, GATEWAY, first.signed.sequence
    )
    assert second.signed.models[NAME].version == "2"

    rolled = cloud.http.post(f"/api/models/{NAME}/rollback", json={"reason": "false alarms"}, headers=operator)
    assert rolled.status_code == 200, rolled.text
    assert (rolled.json()["history"]["from_version"], rolled.json()["history"]["to_version"]) == ("2", "1")
    back = verify_director(retained_document(cloud.config, GATEWAY).to_json(), trusted, GATEWAY, second.signed.sequence)
    assert back.signed.models[NAME].version == "1"
    assert back.signed.models[NAME].model_sha256 == accepted.signed.models[NAME].model_sha256

    viewer = auth(cloud.tokens[Role.VIEWER])
    history = cloud.http.get(f"/api/models/{NAME}/history", headers=viewer).json()
    assert [(h["action"], h["to_version"]) for h in history] == [("rollback", "1"), ("promote", "2"), ("promote", "1")]
    assert history[0]["reason"] == "false alarms" and history[0]["actor"].startswith("key:")
    active = cloud.http.get(f"/api/models/{NAME}/active", params={"device_type": "tank-50gal-electric"}, headers=viewer)
    assert active.status_code == 200
    body = active.json()
    assert (body["model_version"], body["production_device_type"]) == ("1", None)
    lineage = body["lineage"]
    assert lineage["tuf_target"] == f"models/{NAME}/1/model.onnx"
    assert lineage["artifact_sha256"] == accepted.signed.models[NAME].model_sha256
    assert lineage["signing_key_ids"], "the targets metadata that lists the release names its signing key"


def test_roles_and_the_evaluation_gate_over_http(cloud: ServedCloud):
    db = open_database(cloud.config.database_url)
    try:
        MLModelRegistry(db).record_evaluation(NAME, "2", passed=False, details={"mean_roc_auc": 0.5})
    finally:
        db.close()
    body = {"reason": "try it"}
    url = f"/api/models/{NAME}/2/promote"

    assert cloud.http.post(url, json=body, headers=auth(cloud.tokens[Role.VIEWER])).status_code == 403
    refused = cloud.http.post(url, json=body, headers=auth(cloud.tokens[Role.OPERATOR]))
    assert refused.status_code == 409 and "failed evaluation" in refused.json()["detail"]
    override = {**body, "override": True}
    assert cloud.http.post(url, json=override, headers=auth(cloud.tokens[Role.OPERATOR])).status_code == 403
    assert cloud.http.get(f"/api/models/{NAME}/active", headers=auth(cloud.tokens[Role.VIEWER])).status_code == 404

    admitted = cloud.http.post(url, json=override, headers=auth(cloud.tokens[Role.ADMIN]))
    assert admitted.status_code == 200, admitted.text
    assert admitted.json()["history"]["override"] is True
    missing = cloud.http.post(f"/api/models/{NAME}/9/promote", json=body, headers=auth(cloud.tokens[Role.ADMIN]))
    assert missing.status_code == 404


def test_cli_promotes_rolls_back_and_shows_history(released: CloudConfig, monkeypatch):
    monkeypatch.setenv("IOTSPHERE_TOPIC_PREFIX", released.topic_prefix)
    runner = CliRunner()
    base = ["models"]
    data = ["--data-dir", str(released.data_dir)]

    def run(*args: str) -> str:
        result = runner.invoke(main, [*base, *args, *data], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    mqtt_args = ("--mqtt", released.mqtt_url)
    assert "Directed gw-reg-1" in run("promote", NAME, "1", "--reason", "first", *mqtt_args)
    run("promote", NAME, "2", "--reason", "second", *mqtt_args)
    assert "2 -> 1" in run("rollback", NAME, "--reason", "regressed", *mqtt_args)
    history = run("history", NAME)
    assert history.index("rollback") < history.index("second") < history.index("first")
    assert ["1", "production", "all"] in [line.split()[1:4] for line in run("list", NAME).splitlines()]
    assert '"signing_key_ids": [' in run("show", NAME, "1")
    refused = runner.invoke(main, [*base, "rollback", NAME, "--to", "9", "--reason", "x", *data, *mqtt_args])
    assert refused.exit_code == 1 and "no model 'component_failure' version '9'" in refused.output


def test_recording_a_release_again_keeps_a_production_version_in_production(released: CloudConfig, tmp_path: Path):
    db = open_database(released.database_url)
    registry = MLModelRegistry(db)
    production = {"status": "production", "production_device_type": ""}
    update_rows(db, "models", {"model_name": NAME, "model_version": "1"}, production)
    folder = tmp_path / "artifacts" / "1"  # the identical release the fixture published
    again = tuf_repo.add_release(
        released, PASSPHRASE, (folder / "release.json").read_bytes(), (folder / "model.onnx").read_bytes()
    )
    assert again.already_published
    record_release(db, again)
    assert registry.get_version(NAME, "1")["status"] == "production"
