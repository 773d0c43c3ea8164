"""Director documents through the real Mosquitto on 127.0.0.1:1883: retained, late subscribers get them."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest

from cloud.registry import MLModelRegistry
from cloud.releases import director, first_release, keystore, tuf_repo
from cloud.releases.director_worker import DirectorPublisher
from cloud.releases.service import ReleaseService
from cloud.storage import iso, open_database
from shared.director import DirectorDocument, verify_director
from tests.releases.conftest import PASSPHRASE, clear_retained

pytestmark = pytest.mark.mqtt


def _retained(config, count: int, timeout: float = 10.0) -> dict[str, DirectorDocument]:
    """Subscribe late, as a gateway coming online does, and collect the retained ``down/desired`` documents."""
    received: dict[str, DirectorDocument] = {}
    done = threading.Event()

    def on_message(client, userdata, message):
        if message.retain and message.payload:
            received[message.topic] = DirectorDocument.model_validate_json(message.payload)
            if len(received) >= count:
                done.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"late-{uuid.uuid4().hex[:8]}")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{config.topic_prefix}/gw/+/down/desired", qos=1)
    client.on_message = on_message
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        done.wait(timeout)
    finally:
        client.disconnect()
        client.loop_stop()
    return received


@pytest.fixture
def released(initialized, artifacts):
    """An initialised cloud with component_failure versions 1 and 2 in TUF; retained topics cleared afterwards."""
    for version, seed in (("1", 1), ("2", 2)):
        made = artifacts(version=version, seed=seed)
        tuf_repo.add_release(initialized, PASSPHRASE, made.release_json, made.onnx_bytes)
    yield initialized
    database = open_database(initialized.database_path)
    gateways = [row[0] for row in database.execute("SELECT gateway_id FROM director_documents")]
    database.conn.close()
    clear_retained(initialized, gateways)


@pytest.fixture
def db(released):
    database = open_database(released.database_path)
    yield database
    database.conn.close()


@pytest.fixture
def trusted(released):
    key = keystore.director_key(released.keys_dir, PASSPHRASE)
    return {keystore.key_info("director", key).keyid: key.public_key()}


def _see_gateway(db, gateway_id: str) -> None:
    """What the ingest worker does when a gateway first reports ``up/status``."""
    db["gateways"].insert({"gateway_id": gateway_id, "last_seen": iso(datetime.now(UTC))})


def test_released_documents_are_retained_for_a_late_subscriber(released, db, trusted):
    service = ReleaseService(released, PASSPHRASE)
    documents = service.direct_gateways(db, "component_failure", "2", ["gw-a", "gw-b"]).documents
    assert [d.signed.gateway_id for d in documents] == ["gw-a", "gw-b"]

    received = _retained(released, count=2)
    for gateway_id in ("gw-a", "gw-b"):
        document = received[f"{released.topic_prefix}/gw/{gateway_id}/down/desired"]
        accepted = verify_director(document.to_json(), trusted, gateway_id, last_sequence=None)
        assert accepted.signed.models["component_failure"].version == "2"
    assert director.unpublished_gateways(db) == []
    assert director.fleet_desired(db) == {}  # directing chosen gateways leaves the fleet default alone


def test_a_first_release_is_production_and_reaches_gateways_seen_later_through_the_publisher(
    released, db, trusted, artifacts
):
    _see_gateway(db, "gw-early")
    first = first_release.release(ReleaseService(released, PASSPHRASE), db, artifacts(version="3").directory)
    (early,) = first.directed.documents
    assert early.signed.gateway_id == "gw-early"
    assert MLModelRegistry(db).get_active_model("component_failure")["model_version"] == "3"  # what gateways run
    assert (first.promotion["from_version"], first.promotion["to_version"]) == (None, "3")

    _see_gateway(db, "gw-late")
    done = DirectorPublisher(released, PASSPHRASE).run_once(db)
    assert done["issued"] == 1 and done["published"] == 1
    received = _retained(released, count=2)
    late = received[f"{released.topic_prefix}/gw/gw-late/down/desired"]
    accepted = verify_director(late.to_json(), trusted, "gw-late", last_sequence=None)
    assert accepted.signed.models["component_failure"].version == "3"


def test_broker_outage_keeps_the_document_pending_until_the_publisher_sends_it(released, db, trusted):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    offline = dataclasses.replace(released, mqtt_url=f"mqtt://127.0.0.1:{closed_port}")
    service = ReleaseService(offline, PASSPHRASE, delivery_timeout=2)
    directed = service.direct_gateways(db, "component_failure", "1", ["gw-offline"])
    assert "cannot reach the MQTT broker" in directed.pending
    assert director.unpublished_gateways(db) == ["gw-offline"]

    done = DirectorPublisher(released).run_once(db)  # no passphrase: it can still send what is pending
    assert done["published"] == 1 and "issued" not in done
    received = _retained(released, count=1)
    document = received[f"{released.topic_prefix}/gw/gw-offline/down/desired"]
    verify_director(document.to_json(), trusted, "gw-offline", last_sequence=None)
    assert director.unpublished_gateways(db) == []


def test_publisher_renews_documents_before_they_expire(released, db):
    key = keystore.director_key(released.keys_dir, PASSPHRASE)
    desired = {"component_failure": director.desired_model(released, "component_failure", "1")}
    (short,) = director.issue_documents(released, db, key, ["gw-1"], desired, validity=timedelta(hours=1)).documents

    done = DirectorPublisher(released, PASSPHRASE).run_once(db)
    assert done["renewed"] == 1
    renewed = director.latest_document(db, "gw-1")
    assert renewed.signed.sequence == short.signed.sequence + 1
    assert renewed.signed.models == short.signed.models
    assert renewed.signed.expires() > short.signed.expires() + timedelta(days=29)
    received = _retained(released, count=1)
    assert received[f"{released.topic_prefix}/gw/gw-1/down/desired"].signed.sequence == renewed.signed.sequence


def test_background_worker_directs_a_new_gateway_and_stops(released, db):
    director.set_fleet_desired(db, {"component_failure": director.desired_model(released, "component_failure", "2")})
    worker = DirectorPublisher(released, PASSPHRASE, interval=0.1)
    worker.start()
    try:
        _see_gateway(db, "gw-new")
        deadline = time.monotonic() + 10
        while director.unpublished_gateways(db) or director.latest_document(db, "gw-new") is None:
            assert time.monotonic() < deadline, "the worker did not publish the new gateway's document"
            time.sleep(0.05)
    finally:
        worker.stop()
    assert worker.counts["issued"] == 1 and worker.counts["published"] == 1
    assert _retained(released, count=1)[f"{released.topic_prefix}/gw/gw-new/down/desired"].signed.sequence == 1


def test_publisher_refuses_a_wrong_passphrase_at_start(released):
    with pytest.raises(keystore.WrongPassphrase):
        DirectorPublisher(released, "wrong").start()


def test_publisher_before_init_only_waits(config):
    """``cloud serve`` may start before ``cloud init``: the worker must neither fail nor sign."""
    worker = DirectorPublisher(config, PASSPHRASE)
    worker.start()
    worker.stop()
    database = open_database(config.database_path)
    try:
        assert worker.run_once(database) == {"published": 0}
    finally:
        database.conn.close()


def test_broker_outage_is_counted_and_the_worker_keeps_going(released, db):
    key = keystore.director_key(released.keys_dir, PASSPHRASE)
    desired = {"component_failure": director.desired_model(released, "component_failure", "1")}
    director.issue_documents(released, db, key, ["gw-1"], desired)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    offline = dataclasses.replace(released, mqtt_url=f"mqtt://127.0.0.1:{closed_port}")
    done = DirectorPublisher(offline, PASSPHRASE).run_once(db)
    assert done["published_errors"] == 1 and done["published"] == 0
    assert director.unpublished_gateways(db) == ["gw-1"]
