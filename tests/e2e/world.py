"""The whole loop on one machine: the cloud (CLI, TUF, API over HTTP, ingest worker) and a real edge agent.

Every part is the production one: ``cloud init`` and ``cloud release`` run through the click CLI, the API
is served by uvicorn, the ingest worker stores the gateway's uplink from the real Mosquitto on
127.0.0.1:1883, and the agent gets telemetry from the simulator over MQTT. A world has its own topic
prefix, gateway id (telemetry topics carry no prefix, so the gateway id keeps worlds apart) and ingest
session, so worlds never see each other.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlite_utils
from click.testing import CliRunner

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.ingest import IngestWorker
from cloud.releases import director, keystore, tuf_repo
from cloud.releases.publisher import RetainedPublisher, desired_topic
from cloud.storage import iso, open_database
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from firmware_sim.live import Fleet, publish
from iotsphere.cli import main
from shared.director import DirectorDocument
from shared.release import ReleaseFile
from shared.topics import Up, up_topic
from tests.api.conftest import auth, served_cloud
from tests.edge.mqtt_helpers import unique_prefix, wait_for
from tests.edge.tuf_world import PASSPHRASE, Cloud
from tests.ingest.helpers import forget_session
from tests.rows import rows_of

BROKER = "mqtt://127.0.0.1:1883"
MODEL = "component_failure"
START = datetime(2026, 3, 1, tzinfo=UTC)
#: the agent predicts once a window holds half a day (``MIN_COVERAGE``): this much telemetry gets the first tick
FIRST_PREDICTIONS_MINUTES = 13 * 60
HEATERS = 3


def write_artifacts(folder: Path, release_bytes: bytes, onnx_bytes: bytes) -> Path:
    """A folder shaped like training's output, for ``cloud release``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "release.json").write_bytes(release_bytes)
    (folder / "model.onnx").write_bytes(onnx_bytes)
    return folder


@dataclass
class World:
    cloud: Cloud
    gateway_id: str
    viewer_token: str
    agent: EdgeAgent
    fleet: Fleet
    ingest: IngestWorker
    db: sqlite_utils.Database
    http: httpx.Client
    #: every director document ``release`` made the cloud issue to this gateway, oldest first (as a sniffer keeps them)
    issued: list[bytes] = field(default_factory=list)

    @property
    def config(self) -> CloudConfig:
        return self.cloud.config

    def cli(self, *args: str) -> str:
        """``iotsphere cloud ...`` as an operator runs it, against this world's data, broker and prefix."""
        env = {PASSPHRASE_ENV: PASSPHRASE, "IOTSPHERE_TOPIC_PREFIX": self.config.topic_prefix}
        result = CliRunner().invoke(
            main, ["cloud", *args, "--data-dir", str(self.config.data_dir)], env=env, catch_exceptions=False
        )
        assert result.exit_code == 0, result.output
        return result.output

    def iotsphere(self, *args: str) -> str:
        """An ``iotsphere`` command as an operator runs it against this world's data, broker and topic prefix."""
        env = {PASSPHRASE_ENV: PASSPHRASE, "IOTSPHERE_TOPIC_PREFIX": self.config.topic_prefix}
        result = CliRunner().invoke(main, [*args, "--data-dir", str(self.config.data_dir)], env=env)
        assert result.exit_code == 0, result.output
        return result.output

    def release(self, artifact_dir: Path) -> ReleaseFile:
        """``cloud release`` directing this gateway: signs into TUF and publishes a retained director document."""
        self.cli("release", str(artifact_dir), "--gateway", self.gateway_id, "--mqtt", BROKER)
        self.issued.append(self.latest_document().to_json())
        return ReleaseFile.model_validate_json((artifact_dir / "release.json").read_bytes())

    def send_document(self, payload: bytes) -> None:
        """Retained, QoS 1, on the gateway's ``down/desired``, through the cloud's own publisher."""
        with RetainedPublisher(BROKER) as publisher:
            publisher.publish(desired_topic(self.config, self.gateway_id), payload)

    def latest_document(self) -> DirectorDocument:
        """The newest document the cloud issued for this gateway."""
        return director.latest_document(self.db, self.gateway_id)

    # -- what the cloud stored -------------------------------------------------------------------------

    def events(self, sequence: int | None = None) -> list[dict]:
        found = rows_of(self.db, "gateway_events", gateway_id=self.gateway_id)
        if sequence is not None:
            found = [e for e in found if e["director_sequence"] == sequence]
        return sorted(found, key=lambda e: e["sent_at"])

    def wait_event(self, kind: str, sequence: int, timeout: float = 30) -> dict:
        """The first event of ``kind`` the gateway reported for the document with ``sequence``."""
        wait_for(
            lambda: any(e["kind"] == kind for e in self.events(sequence)),
            timeout,
            f"a {kind} event for director sequence {sequence}",
        )
        return next(e for e in self.events(sequence) if e["kind"] == kind)

    def reported_sequence(self) -> int | None:
        rows = rows_of(self.db, "gateways", gateway_id=self.gateway_id)
        return rows[0]["director_sequence"] if rows else None

    def predictions(self, window_end: datetime) -> list[dict]:
        found = rows_of(self.db, "predictions", gateway_id=self.gateway_id, feature_window_end=iso(window_end))
        return sorted(found, key=lambda p: p["device_id"])

    # -- the heaters -----------------------------------------------------------------------------------

    def boundary(self) -> datetime:
        """The newest feature boundary the agent has passed: telemetry is past it by the tick grace."""
        return (self.fleet.now - self.agent.config.tick_grace).replace(minute=0, second=0, microsecond=0)

    def feed(self, minutes: int) -> None:
        """The next ``minutes`` of simulated telemetry over MQTT, an hour at a time.

        Each hour waits until the cloud has the agent's features for it: a burst of many hours would
        outrun Mosquitto's queue for the agent's session (1000 messages by default), which drops the rest.
        """
        while minutes > 0:
            chunk = min(minutes, 60)
            before = self.boundary()
            stats = publish(self.fleet, BROKER, speed=1e9, minutes=chunk)
            assert stats.failed == 0
            minutes -= chunk
            boundary = self.boundary()
            if boundary > before and boundary > START:  # a window with readings in it was computed
                wait_for(lambda end=boundary: self.features_stored(end) == HEATERS, 30, f"features for {boundary}")

    def features_stored(self, window_end: datetime) -> int:
        devices = {d["device_id"] for d in rows_of(self.db, "devices", gateway_id=self.gateway_id)}
        return sum(f["device_id"] in devices for f in rows_of(self.db, "features", window_end=iso(window_end)))

    def next_tick(self, per_heater: int = 1) -> list[dict]:
        """Feed until the next feature boundary has passed; return the predictions the cloud stored for it.

        ``per_heater``: how many predictions each heater gets (one per model, and one more per shadow).
        """
        self.feed(60)
        boundary = self.boundary()
        wait_for(
            lambda: len(self.predictions(boundary)) == per_heater * HEATERS,
            30,
            f"{per_heater} prediction(s) per heater for the window to {boundary}",
        )
        return self.predictions(boundary)

    def served_prediction(self, device_id: str) -> dict:
        """The newest prediction through the REST API, as a viewer reads it."""
        response = self.http.get(f"/api/predictions/water-heaters/{device_id}/{MODEL}", headers=auth(self.viewer_token))
        assert response.status_code == 200, response.text
        return response.json()


@contextmanager
def running_world(folder: Path, seed: int = 2) -> Iterator[World]:
    """A fresh cloud (``cloud init``) serving over HTTP with ingest running, and a started agent with no model."""
    gateway_id = f"gw-e2e-{uuid.uuid4().hex[:8]}"
    config = CloudConfig(
        data_dir=folder / "cloud",
        mqtt_url=BROKER,
        topic_prefix=unique_prefix(),
        ingest_client_id=f"ingest-e2e-{uuid.uuid4().hex[:8]}",
    )
    init = CliRunner().invoke(
        main, ["cloud", "init", "--data-dir", str(config.data_dir)], env={PASSPHRASE_ENV: PASSPHRASE}
    )
    assert init.exit_code == 0 and tuf_repo.is_initialized(config), init.output
    ingest = IngestWorker(config)
    db = open_database(config.database_url)
    gateway_token = KeyStore(db).create(Role.GATEWAY, "e2e gateway", gateway_id).token
    with served_cloud(config) as served:
        cloud = Cloud(served, keystore.director_key(config.keys_dir, PASSPHRASE))
        agent = EdgeAgent(
            AgentConfig(
                gateway_id,
                folder / "gateway",
                mqtt_url=BROKER,
                cloud_url=served.base_url,
                api_key=gateway_token,
                trusted_root=tuf_repo.trusted_root_path(config),
                prefix=config.topic_prefix,
                reconnect_delay=(0.1, 0.5),
                update_retry=timedelta(seconds=2),
            )
        )
        ingest.start()
        agent.start()
        world = World(
            cloud,
            gateway_id,
            served.tokens[Role.VIEWER],
            agent,
            Fleet(gateway_id, heaters=HEATERS, seed=seed, start=START),
            ingest,
            db,
            served.http,
        )
        try:
            yield world
        finally:
            agent.stop()
            ingest.stop()
            forget_session(config.ingest_client_id)
            with RetainedPublisher(BROKER) as publisher:  # leave no retained message behind on the shared broker
                publisher.publish(desired_topic(config, gateway_id), b"")
                publisher.publish(up_topic(gateway_id, Up.STATUS, config.topic_prefix), b"")
            db.close()
