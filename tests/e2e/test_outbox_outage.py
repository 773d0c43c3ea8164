"""Store-and-forward through a broker outage: a real agent keeps producing while its private Mosquitto is
down, and the cloud's ingest ends with every message exactly once."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cloud.config import CloudConfig
from cloud.ingest.worker import IngestWorker
from cloud.storage import open_database
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.model_loader import load_model
from firmware_sim.live import Fleet
from tests.edge.mqtt_helpers import unique_prefix, wait_for
from tests.edge.releases import build_serving_release
from tests.private_broker import PrivateBroker

START = datetime(2026, 3, 1, tzinfo=UTC)
HEATERS = 3


def _count(db, sql: str, *args) -> int:
    return db.execute(sql, args).fetchone()[0]


def test_agent_outbox_delivers_everything_once_after_the_broker_comes_back(tmp_path: Path):
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    prefix = unique_prefix()
    gateway_id = f"gw-{uuid.uuid4().hex[:8]}"
    config = CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=broker.url, topic_prefix=prefix)
    db = open_database(config.database_path)
    ingest = IngestWorker(config, client_id=f"ingest-{uuid.uuid4().hex[:8]}", shared_group=None)
    agent = EdgeAgent(
        AgentConfig(
            gateway_id, tmp_path / "gw", mqtt_url=broker.url, prefix=prefix, feature_interval=timedelta(hours=1)
        )
    )
    built = build_serving_release()
    agent.store.install(built.release, built.release_bytes, built.onnx_bytes)
    agent.store.activate(load_model(built.onnx_bytes, built.release))
    fleet = Fleet(gateway_id, heaters=HEATERS, seed=4, start=START)

    def feed(hours: int) -> int:
        return agent.run_in_process(r for _ in range(hours * 60) for r in fleet.step())

    ingest.start()
    agent.start()
    try:
        ticks = feed(14)
        wait_for(lambda: agent.outbox.depth() == 0, timeout=20, what="the outbox to drain while online")

        broker.stop()
        ticks += feed(10)  # produced offline: kept in the outbox
        offline_depth = agent.outbox.depth()
        assert offline_depth >= 10, offline_depth

        broker.start()
        ticks += feed(2)
        wait_for(lambda: agent.outbox.depth() == 0, timeout=60, what="the outbox to drain after the outage")
        feature_rows = ticks * HEATERS
        wait_for(
            lambda: _count(db, "SELECT count(*) FROM features") >= feature_rows,
            timeout=30,
            what=f"{feature_rows} feature rows in the cloud",
        )
    finally:
        agent.stop()
        ingest.stop()
        broker.stop()

    # exactly once: one row per heater and feature tick, and one prediction per heater per window predicted
    assert _count(db, "SELECT count(*) FROM features") == feature_rows
    assert _count(db, "SELECT count(DISTINCT window_end) FROM features") == ticks
    predictions = _count(db, "SELECT count(*) FROM predictions")
    assert predictions > 0
    assert predictions == _count(db, "SELECT count(DISTINCT prediction_id || arm) FROM predictions")
    assert _count(db, "SELECT count(DISTINCT feature_window_end) FROM predictions") * HEATERS == predictions, (
        "every predicted window has one prediction per heater, none twice"
    )
    assert _count(db, "SELECT count(*) FROM dead_letters") == 0
