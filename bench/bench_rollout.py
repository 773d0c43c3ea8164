"""A release rolled out to 20 gateways on this machine: time until all committed, and predictions lost in the swap.

Everything is the production path, as ``make demo`` runs it: the cloud's API (TUF over HTTP) and ingest worker,
20 edge agents in this process, each fed its own simulated site in process at 3600x (one feature tick a real
second), everything between them over the machine's Mosquitto (``IOTSPHERE_MQTT_URL`` to use another broker)
under a topic prefix of this run. Two releases are trained (``cloud.training``, logistic regression on a small
simulated history) and released with the demo's cold-start code (sign into TUF, direct the whole fleet):

- version 1 to gateways running no model, then version 2 while the heaters keep sending: from the moment the
  release is signed to each gateway's commit, read from the cloud's deployments view (``list_deployments``:
  the gateways' ``download`` / ``activate`` / ``commit`` events, stored by ingest); median and max;
- the swap: per gateway, download start to the new release serving (the ``activate`` event: the checks run
  while the old release serves), the switch itself (``install`` to ``activate``), and the
  predictions stored by the cloud per feature window from five windows before the gateway's first version-2
  window to its last: every window should hold one prediction per heater, so any shortfall is a prediction
  lost in the swap (target: none).

Probation asks for one feature tick of predictions (one per heater), so a commit follows the first tick after
activation: at most a second of waiting at this speed, included in the figures.
"""

from __future__ import annotations

import logging
import os
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from cloud.api.keys import KeyStore
from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.deployments import DeploymentState, list_deployments
from cloud.ingest import IngestWorker
from cloud.releases import tuf_repo
from cloud.releases.publisher import RetainedPublisher, desired_topic
from cloud.storage import from_iso, open_database
from edge_agent.config import ProbationPolicy
from firmware_sim.history import generate_history
from iotsphere.demo import cold_start
from iotsphere.demo.api_server import ApiServer
from iotsphere.demo.sites import GatewaySpec, Site
from shared.messages import PredictionType
from shared.topics import Up, up_topic

MODEL = PredictionType.COMPONENT_FAILURE.value
GATEWAYS = 20
HEATERS = 5
SPEED = 3600.0
#: simulated hours before the first window is covered enough to predict (``MIN_COVERAGE``), with a margin
WARM_UP_HOURS = 14
WINDOWS_BEFORE_SWAP = 5
TIMEOUT_S = 180.0


def _train_two(config: CloudConfig, folder: Path) -> list[Path]:
    history = folder / "history.npz"
    generate_history(heaters=60, days=60, seed=5).save(history)
    return [
        cold_start.train(history, config, PredictionType.COMPONENT_FAILURE, ["logistic_regression"], lambda _l: None)
        for _ in range(2)
    ]


def _wait(condition, what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.1)


def _rollout(config: CloudConfig, passphrase: str, artifacts: Path, db) -> dict:
    """Release ``artifacts`` to the fleet; seconds from the release to each gateway's download, activation, commit."""
    began = datetime.now(UTC)
    released = cold_start.release(config, passphrase, artifacts)
    version = released.model_version

    def done() -> list:
        deployments = list_deployments(db, model_name=MODEL)
        committed = [d for d in deployments if d.version == version and d.state is DeploymentState.COMMITTED]
        return committed if len(committed) == GATEWAYS else []

    _wait(lambda: bool(done()), f"all {GATEWAYS} gateways committed on version {version}")
    deployments = done()

    def seconds(field: str) -> list[float]:
        return sorted((getattr(d, field) - began).total_seconds() for d in deployments)

    committed = seconds("committed_at")
    updates = sorted((d.probation_at - d.downloading_at).total_seconds() for d in deployments)
    switches = sorted(_switch_seconds(db, d.gateway_id, d.director_sequence) for d in deployments)
    return {
        "version": version,
        "all_committed_seconds": {"median": round(statistics.median(committed), 2), "max": round(committed[-1], 2)},
        "first_download_seconds_median": round(statistics.median(seconds("downloading_at")), 2),
        "activated_seconds": {
            "median": round(statistics.median(seconds("probation_at")), 2),
            "max": round(max(seconds("probation_at")), 2),
        },
        "download_to_serving_seconds": {"median": round(statistics.median(updates), 3), "max": round(updates[-1], 3)},
        "swap_ms": {"median": round(statistics.median(switches) * 1000, 2), "max": round(switches[-1] * 1000, 2)},
    }


def _switch_seconds(db, gateway_id: str, sequence: int) -> float:
    """The swap itself: from the release written (``install``) to it serving (``activate``), on the gateway's clock.

    Covers the atomic pointer write (write, fsync, rename, fsync) and the in-memory switch; the checks before it
    (download, sandboxed load, golden vectors) run while the old release keeps serving.
    """
    times = dict(
        db.execute(
            "SELECT kind, sent_at FROM gateway_events WHERE gateway_id = ? AND director_sequence = ?"
            " AND kind IN ('install', 'activate')",
            [gateway_id, sequence],
        ).fetchall()
    )
    return (from_iso(times["activate"]) - from_iso(times["install"])).total_seconds()


def _predictions_per_window(db, gateway_ids: list[str], new_version: str) -> dict:
    """Predictions stored per gateway and feature window around each gateway's swap to ``new_version``."""
    windows = short = extra = mixed = 0
    for gateway_id in gateway_ids:
        rows = db.execute(
            """SELECT feature_window_end, count(*), count(DISTINCT model_version),
                      max(model_version = ?) FROM predictions
               WHERE gateway_id = ? AND model_name = ? GROUP BY feature_window_end ORDER BY feature_window_end""",
            [new_version, gateway_id, MODEL],
        ).fetchall()
        first_new = next(i for i, row in enumerate(rows) if row[3])
        for _window, count, versions, _new in rows[max(0, first_new - WINDOWS_BEFORE_SWAP) :]:
            windows += 1
            short += max(0, HEATERS - count)
            extra += max(0, count - HEATERS)
            mixed += versions > 1
    return {
        "windows_checked": windows,
        "predictions_expected": windows * HEATERS,
        "predictions_lost": short,
        "predictions_duplicated": extra,
        "windows_with_both_versions": mixed,
    }


def run() -> dict:
    logging.getLogger("tuf").setLevel(logging.WARNING)
    mqtt_url = os.environ.get("IOTSPHERE_MQTT_URL", "mqtt://127.0.0.1:1883")
    tag = secrets.token_hex(3)
    with tempfile.TemporaryDirectory(prefix="bench-rollout-") as tmp:
        folder = Path(tmp)
        config = CloudConfig(
            data_dir=folder / "cloud",
            mqtt_url=mqtt_url,
            topic_prefix=f"bench-{tag}/iotsphere/v1",
            ingest_client_id=f"bench-rollout-ingest-{tag}",
        )
        passphrase = secrets.token_urlsafe(12)
        cold_start.init_trust(config, passphrase)
        began = time.perf_counter()
        artifacts = _train_two(config, folder)
        training_s = time.perf_counter() - began

        db = open_database(config.database_path)
        gateway_ids = [f"gw{n:02d}-{tag}" for n in range(GATEWAYS)]
        keys = KeyStore(db)
        specs = [GatewaySpec(g, folder / "gateways" / g, keys.create(Role.GATEWAY, g, g).token) for g in gateway_ids]
        api = ApiServer(config)
        api.start()
        ingest = IngestWorker(config, shared_group=None)
        ingest.start()
        start = datetime(2026, 3, 1, tzinfo=UTC)
        root = tuf_repo.trusted_root_path(config)
        sites = [
            Site(spec, HEATERS, 11 + n, start, SPEED, mqtt_url, api.url, root, config.topic_prefix)
            for n, spec in enumerate(specs)
        ]
        try:
            for site in sites:
                site.agent.probation.policy = ProbationPolicy(predictions_required=HEATERS)
                site.start()
            known = "SELECT count(*) FROM gateways WHERE gateway_id LIKE ?"
            _wait(lambda: db.execute(known, [f"%-{tag}"]).fetchone()[0] == GATEWAYS, "every gateway's status")
            warm = start.timestamp() + WARM_UP_HOURS * 3600
            _wait(lambda: min(s.now.timestamp() for s in sites) >= warm, "the sites' windows to fill")

            first = _rollout(config, passphrase, artifacts[0], db)
            second = _rollout(config, passphrase, artifacts[1], db)
            time.sleep(3 * 3600 / SPEED)  # a few more windows on version 2
        finally:
            for site in sites:
                site.stop_heaters()
            left = sum(site.agent.stop(drain_seconds=10) for site in sites)
            time.sleep(2)  # the last predictions through ingest
            ingest.stop()
            api.stop()
            with RetainedPublisher(mqtt_url) as publisher:  # nothing retained left behind on a shared broker
                for gateway_id in gateway_ids:
                    publisher.publish(desired_topic(config, gateway_id), b"")
                    publisher.publish(up_topic(gateway_id, Up.STATUS, config.topic_prefix), b"")
        swap = _predictions_per_window(db, gateway_ids, second["version"])
        db.conn.close()
    return {
        "gateways": GATEWAYS,
        "heaters_per_gateway": HEATERS,
        "speed": SPEED,
        "broker": mqtt_url,
        "probation_predictions_required": HEATERS,
        "training_two_releases_seconds": round(training_s, 2),
        "first_release_to_idle_gateways": first,
        "upgrade_under_live_telemetry": second,
        "swap_predictions": swap,
        "outbox_left_at_stop": left,
        "targets": {"predictions_lost": 0},
        "met": {"predictions_lost": swap["predictions_lost"] == 0},
    }
