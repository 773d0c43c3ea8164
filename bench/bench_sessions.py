"""A worker killed for good: how long until every message is stored (cloud/ingest/worker.py, "Workers that stop").

Method. A private Mosquitto (queue limit lifted, as deploy/mosquitto does) and two ``iotsphere cloud ingest``
processes on one SQLite file, in the shared group. WARMUP messages are published and stored, one worker is
killed with SIGKILL, and MESSAGES more are published at once by three gateways, QoS 1, each acknowledged by the
broker: about half of them are queued in the dead worker's session. The clock runs from the kill until every
message is stored, once; the bound it is judged by is ``stale_after`` + ``heartbeat_interval`` + the drain.
Run with short settings (1 s, 5 s) and with the defaults (5 s, 30 s).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.bench_ingest import start_mosquitto
from cloud.ingest.worker import HEARTBEAT_SECONDS, STALE_AFTER_SECONDS
from cloud.storage import open_database
from shared.messages import FeatureBatch, FeatureRow
from shared.topics import Up, up_topic

WARMUP, MESSAGES = 200, 5_000
SETTINGS = [(1.0, 5.0), (HEARTBEAT_SECONDS, STALE_AFTER_SECONDS)]
PREFIX = "bench/iotsphere/v1"
IOTSPHERE = str(Path(sys.executable).parent / "iotsphere")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _publish(client: mqtt.Client, windows: range) -> None:
    infos = []
    for window in windows:
        gateway = f"gw-{window % 3}"
        row = FeatureRow(device_id="h1", device_type="tank-50", window_end=T0 + timedelta(minutes=window), values=[1.0])
        batch = FeatureBatch(gateway_id=gateway, feature_set_version="fs1", feature_names=["f"], rows=[row])
        infos.append(client.publish(up_topic(gateway, Up.FEATURES, PREFIX), batch.to_json(), qos=1))
    for info in infos:
        info.wait_for_publish(60)


def _wait(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("not all messages were stored")
        time.sleep(0.05)


def _kill_one(folder: Path, port: int, heartbeat: float, stale_after: float) -> dict:
    data_dir = folder / f"cloud-{stale_after:g}"
    workers = []
    for client_id in ("ingest-a", "ingest-b"):
        command = [IOTSPHERE, "cloud", "ingest", "--mqtt", f"mqtt://127.0.0.1:{port}", "--data-dir", str(data_dir)]
        command += ["--prefix", PREFIX, "--client-id", client_id, "--heartbeat-interval", str(heartbeat)]
        command += ["--stale-after", str(stale_after)]
        worker = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        worker.stdout.readline()  # "ingest: storing ...": subscribed
        workers.append(worker)
    db = open_database(data_dir / "iotsphere.db")

    def stored() -> int:
        return db.execute("SELECT count(*) FROM ingested_messages").fetchone()[0]

    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-gateways-{stale_after:g}")
    publisher.max_inflight_messages_set(1000)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    try:
        _publish(publisher, range(WARMUP))
        _wait(lambda: stored() == WARMUP, 30)
        workers[0].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _publish(publisher, range(WARMUP, WARMUP + MESSAGES))
        published = time.monotonic() - killed
        stored_when_published = stored()
        _wait(lambda: stored() == WARMUP + MESSAGES, stale_after + heartbeat + 120)
        took = time.monotonic() - killed
        features = db.execute("SELECT count(*) FROM features").fetchone()[0]
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        for worker in workers:
            worker.kill()
            worker.wait()
        db.conn.close()
    return {
        "heartbeat_interval_s": heartbeat,
        "stale_after_s": stale_after,
        "bound_s_plus_drain": stale_after + heartbeat,
        "messages_after_kill": MESSAGES,
        "published_in_s": round(published, 2),
        "stored_when_published": stored_when_published - WARMUP,
        "all_stored_after_kill_s": round(took, 2),
        "stored_once": features == WARMUP + MESSAGES,
    }


def run() -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        broker, port = start_mosquitto(Path(tmp))
        try:
            return {"kill_one_of_two": [_kill_one(Path(tmp), port, *settings) for settings in SETTINGS]}
        finally:
            broker.terminate()
            broker.wait()
