"""Days offline: a real agent keeps producing while its private Mosquitto is down for days of (accelerated)
telemetry time, with technicians logging outcomes meanwhile. After the broker comes back (and, in one test,
after the agent restarted too) every outcome reaches the cloud's ingest, and reaches it before the backlog of
bulk data; features and predictions kept within their byte bounds lost only their oldest messages, exactly as
many as the drop counters in the gateway's status say; nothing is stored twice."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.config import CloudConfig
from cloud.ingest.worker import IngestWorker
from cloud.storage import from_iso, open_database
from edge_agent.agent import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.model_loader import load_model
from edge_agent.technician import OutcomeRequest
from firmware_sim.live import Fleet
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for
from tests.edge.releases import build_serving_release
from tests.private_broker import PrivateBroker

HEATERS = 3
HOUR = timedelta(hours=1)
#: about a day of 3-heater batches each (a feature batch is ~2 kB, a prediction batch ~1.3 kB)
FEATURE_BOUND = 40_000
PREDICTION_BOUND = 30_000
BULK = ("features", "predictions")


@dataclass
class Site:
    """One gateway with its private broker, the cloud's ingest and a subscriber that records arrival order."""

    root: Path
    broker: PrivateBroker
    prefix: str
    gateway_id: str
    db: object
    ingest: IngestWorker
    watcher: Collector
    fleet: Fleet
    agent: EdgeAgent | None = None
    outcomes: dict[str, str | None] = field(default_factory=dict)  # outcome id → linked prediction id

    def start_agent(self) -> EdgeAgent:
        self.agent = EdgeAgent(
            AgentConfig(
                self.gateway_id,
                self.root / "gw",
                mqtt_url=self.broker.url,
                prefix=self.prefix,
                reconnect_delay=(0.1, 0.5),
                outbox_features_bytes=FEATURE_BOUND,
                outbox_predictions_bytes=PREDICTION_BOUND,
            )
        )
        self.agent.start()
        return self.agent

    def feed(self, hours: int) -> int:
        return self.agent.run_in_process(r for _ in range(hours * 60) for r in self.fleet.step())

    def technician_visits(self, device_id: str) -> None:
        expected = self.agent.devices.latest_prediction(device_id, datetime.now(UTC) - timedelta(days=14))
        outcome = self.agent.technician.record(
            OutcomeRequest(device=device_id, component="thermostat", result="failed", technician="Ana")
        )
        assert expected is not None and outcome.prediction_id == expected
        self.outcomes[outcome.outcome_id] = outcome.prediction_id

    def windows(self, table: str, column: str) -> list[datetime]:
        rows = self.db.execute(f"SELECT DISTINCT {column} FROM {table} ORDER BY {column}").fetchall()
        return [from_iso(row[0]) for row in rows]

    def count(self, sql: str) -> int:
        return self.db.execute(sql).fetchone()[0]


@pytest.fixture
def site(tmp_path: Path):
    broker = PrivateBroker(tmp_path / "broker")
    broker.start()
    prefix, gateway_id = unique_prefix(), f"gw-{uuid.uuid4().hex[:8]}"
    config = CloudConfig(data_dir=tmp_path / "cloud", mqtt_url=broker.url, topic_prefix=prefix)
    ingest = IngestWorker(config, client_id=f"ingest-{uuid.uuid4().hex[:8]}", shared_group=None)
    ingest.start()
    watcher = Collector(broker.url, f"{prefix}/gw/{gateway_id}/up/#", persistent=True)
    # telemetry time ends near now, so outcomes logged now fall within the predictions' horizon
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=7)
    fleet = Fleet(gateway_id, heaters=HEATERS, seed=4, start=start)
    site = Site(tmp_path, broker, prefix, gateway_id, open_database(config.database_path), ingest, watcher, fleet)
    built = build_serving_release()
    agent = site.start_agent()
    agent.store.install(built.release, built.release_bytes, built.onnx_bytes)
    agent.store.activate(load_model(built.onnx_bytes, built.release))
    yield site
    if site.agent is not None:
        site.agent.stop()
    watcher.close()
    ingest.stop()
    broker.stop()


def _hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _go_offline(site: Site) -> tuple[int, datetime]:
    """Run online until predictions flow and everything is delivered; then lose the broker."""
    site.feed(14)
    wait_for(lambda: site.agent.outbox.depth() == 0, timeout=20, what="the outbox to drain while online")
    wait_for(lambda: site.count("SELECT count(*) FROM predictions") > 0, timeout=20, what="predictions online")
    last_online = site.windows("features", "window_end")[-1]

    def watched(channel: str) -> int:
        return sum(1 for m in site.watcher.messages if m.topic.endswith(f"/up/{channel}"))

    wait_for(
        lambda: (
            watched("features") == len(site.windows("features", "window_end"))
            and watched("predictions") == len(site.windows("predictions", "feature_window_end"))
            and watched("events") == site.count("SELECT count(*) FROM gateway_events")
        ),
        what="the watcher to have every message sent online",
    )
    arrived = len(site.watcher.messages)
    site.broker.stop()
    wait_for(lambda: not site.agent.online, what="the agent to notice the outage")
    return arrived, last_online


def _check_delivery(
    site: Site, arrived_before: int, last_online: datetime, offline_ticks: int, predicted_every_tick: bool = True
) -> None:
    """``predicted_every_tick`` is false after an agent restart: its windows start empty, so predictions
    pause until they cover enough time again; features are one message per feature tick throughout."""
    agent = site.agent
    dropped = agent.outbox.dropped()
    assert dropped["features"] > 0 and dropped["predictions"] > 0, dropped
    assert {k: v for k, v in agent.status().dropped.items() if k in BULK} == dropped
    site.broker.start()
    wait_for(lambda: agent.outbox.depth() == 0, timeout=30, what="the outbox to drain after the outage")

    def cloud_dropped() -> dict[str, int]:
        row = site.db.execute("SELECT status_json FROM gateways WHERE gateway_id = ?", [site.gateway_id]).fetchone()
        return json.loads(row[0])["dropped"] if row and row[0] else {}

    wait_for(lambda: site.count("SELECT count(*) FROM outcomes") >= len(site.outcomes), timeout=20, what="outcomes")
    wait_for(lambda: {k: cloud_dropped().get(k) for k in BULK} == dropped, timeout=20, what="the drops in status")

    # every outcome, linked as logged
    stored = dict(site.db.execute("SELECT outcome_id, prediction_id FROM outcomes").fetchall())
    assert stored == site.outcomes

    # bulk data: the newest windows are kept unbroken up to the last one, as many dropped before them as counted
    newest = _hour_floor(site.fleet.now - agent.config.tick_grace)
    # the broker has acknowledged everything; ingest may still be committing the last of it
    wait_for(lambda: max(site.windows("features", "window_end")) == newest, timeout=20, what="the newest features")

    def kept(table: str, column: str) -> list[datetime]:
        return [w for w in site.windows(table, column) if w > last_online]

    def newest_run(count: int) -> list[datetime]:
        return [newest - HOUR * k for k in reversed(range(count))]

    wait_for(
        lambda: len(kept("features", "window_end")) + dropped["features"] >= offline_ticks,
        timeout=20,
        what="the features kept offline",
    )
    features = kept("features", "window_end")
    assert features == newest_run(offline_ticks - dropped["features"])
    if predicted_every_tick:
        wait_for(
            lambda: len(kept("predictions", "feature_window_end")) + dropped["predictions"] >= offline_ticks,
            timeout=20,
            what="the predictions kept offline",
        )
        assert kept("predictions", "feature_window_end") == newest_run(offline_ticks - dropped["predictions"])
    else:
        wait_for(lambda: newest in kept("predictions", "feature_window_end"), what="the newest prediction")
        predictions = kept("predictions", "feature_window_end")
        assert predictions == newest_run(len(predictions))
    online_windows = len(site.windows("features", "window_end")) - len(features)
    assert site.count("SELECT count(*) FROM features") == (online_windows + len(features)) * HEATERS
    assert site.count("SELECT count(*) FROM predictions") == HEATERS * len(site.windows("predictions", "made_at"))
    assert site.count("SELECT count(*) FROM dead_letters") == 0

    # after the reconnect, outcomes (and events) went out before any of the backlog of bulk data
    def after() -> list[str]:
        return [m.topic.rsplit("/", 1)[1] for m in site.watcher.messages[arrived_before:]]

    wait_for(lambda: after().count("features") >= len(features), what="the watcher to see the backlog")
    backlog = [channel for channel in after() if channel != "status"]
    first_bulk = next(i for i, channel in enumerate(backlog) if channel in BULK)
    assert backlog.count("outcomes") == len(site.outcomes)
    assert all(channel in BULK for channel in backlog[first_bulk:]), backlog


def test_days_offline_keep_every_outcome_and_the_newest_bulk_data(site: Site):
    arrived, last_online = _go_offline(site)
    ticks = 0
    for _ in range(5):  # five days without a broker, a technician every day
        ticks += site.feed(24)
        site.technician_visits(site.fleet.device_ids[ticks % HEATERS])
    sizes = site.agent.outbox.bytes_by_channel()
    assert sizes["features"] <= FEATURE_BOUND and sizes["predictions"] <= PREDICTION_BOUND, sizes
    _check_delivery(site, arrived, last_online, ticks)


def test_drop_counts_and_queued_outcomes_survive_an_agent_restart_while_offline(site: Site):
    arrived, last_online = _go_offline(site)
    ticks = site.feed(48)
    site.technician_visits(site.fleet.device_ids[0])
    before_restart = site.agent.outbox.dropped()
    assert site.agent.stop() > 0  # switched off offline: everything stays in the outbox
    site.agent = None

    agent = site.start_agent()
    assert agent.outbox.dropped() == before_restart
    ticks += site.feed(48)
    site.technician_visits(site.fleet.device_ids[1])
    assert agent.outbox.dropped()["features"] > before_restart["features"]
    _check_delivery(site, arrived, last_online, ticks, predicted_every_tick=False)
