"""Ingest throughput: MQTT (QoS 1, Mosquitto) → SQLite, the IngestWorker against a bare paho → executemany loop.

Method. A private Mosquitto on a free port (``max_queued_messages 0``: the stock limit of 1000 queued messages
per session would drop most of a preloaded stream) holds each consumer's persistent session. The messages are
published first, by a separate process, while the consumer is away; the clock then runs from the consumer's
start until every message is committed. So the figure is the consumer's own drain rate, not the publisher's
speed, and both consumers drain the same broker the same way.

- ``bare``: paho with automatic acknowledgement (MQTT 3.1.1), ``json.loads``, each row's values packed as float32
  (the stored format) and one ``executemany`` of the feature rows every 10 ms: no validation, no idempotency,
  acknowledged before stored.
- ``worker``: the IngestWorker as deployed (MQTT 3.1.1, validation, dead letters, dedupe, devices and feature
  sets, PUBACK only after commit); also in its MQTT 5 mode.
- ``read``: a training read, ``feature_codec.read_features`` of READ_ROWS stored rows into one float32 matrix.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.config import CloudConfig
from cloud.ingest import IngestWorker, feature_codec
from cloud.storage import iso, open_database
from shared.messages import FeatureBatch, FeatureRow
from shared.topics import Up, up_topic, up_wildcard

SINGLE_MESSAGES = 10_000
ROUNDS = 3
SCALE_OUT = 2
BATCH_MESSAGES = 1_000
ROWS_PER_BATCH = 100
FEATURES = 16
TARGET_RATIO = 0.8
TARGET_ROWS_PER_S = 100_000
READ_ROWS = 1_000_000
TARGET_READ_SECONDS = 5.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_mosquitto(folder: Path) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\npersistence false\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return broker, port
        if time.monotonic() > deadline or broker.poll() is not None:
            broker.kill()
            raise RuntimeError("mosquitto did not start")
        time.sleep(0.05)


def _payloads(prefix: str, messages: int, rows_per_message: int) -> list[tuple[str, bytes]]:
    names = [f"f{i}" for i in range(FEATURES)]
    values = [float(i) * 0.5 for i in range(FEATURES)]
    out = []
    for m in range(messages):
        gateway = f"gw{m % 10}"
        rows = [
            FeatureRow(
                device_id=f"{gateway}-h{r}",
                device_type="tank-50",
                window_end=T0 + timedelta(minutes=m),
                values=values,
            )
            for r in range(rows_per_message)
        ]
        batch = FeatureBatch(gateway_id=gateway, feature_set_version="fs1", feature_names=names, rows=rows)
        out.append((up_topic(gateway, Up.FEATURES, prefix), batch.to_json()))
    return out


def _publish_in_another_process(port: int, folder: Path, payloads: list[tuple[str, bytes]]) -> None:
    """QoS 1, each acknowledged by the broker, from a separate process as a gateway fleet would."""
    payload_file = folder / "payloads.json"
    payload_file.write_text(json.dumps([(topic, payload.decode()) for topic, payload in payloads]))
    subprocess.run([sys.executable, __file__, "publish", str(port), str(payload_file)], check=True)


def _publish_main(port: int, payload_file: Path) -> None:
    messages = json.loads(payload_file.read_text())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{port}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload.encode(), qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


class _Bare:
    """The bare loop: paho's own thread receives and auto-acknowledges, the main thread inserts every 10 ms."""

    def __init__(self, port: int, folder: Path, name: str, prefix: str) -> None:
        self.port, self.path, self.client_id = port, folder / f"{name}.db", name
        client = self._client()
        client.subscribe(up_wildcard(prefix), qos=1)
        client.loop(1.0)
        client.disconnect()

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False)
        client.connect("127.0.0.1", self.port)
        return client

    def drain(self, expected: int) -> float:
        """Messages per second from connecting until ``expected`` messages are committed."""
        conn = open_database(self.path).conn
        received: list[bytes] = []
        lock = threading.Lock()

        def on_message(_c, _u, message: mqtt.MQTTMessage) -> None:
            with lock:
                received.append(message.payload)

        started = time.perf_counter()
        client = self._client()
        client.on_message = on_message
        client.loop_start()
        stored = 0
        while stored < expected:
            time.sleep(0.01)
            with lock:
                batch = received[:]
                received.clear()
            rows = []
            for payload in batch:
                doc = json.loads(payload)
                for row in doc["rows"]:
                    values = np.array(row["values"], dtype=np.float32).tobytes()
                    rows.append(
                        (row["device_id"], row["window_end"], doc["feature_set_version"], values, doc["msg_id"])
                    )
            with conn:
                conn.executemany(
                    "INSERT OR IGNORE INTO features (device_id, window_end, feature_set_version, values_f32, msg_id)"
                    " VALUES (?,?,?,?,?)",
                    rows,
                )
            stored += len(batch)
        elapsed = time.perf_counter() - started
        client.disconnect()
        client.loop_stop()
        conn.close()
        return expected / elapsed


class _Worker:
    """The IngestWorker as deployed, on a persistent session made beforehand so that the broker queues for it."""

    def __init__(self, port: int, data_dir: Path, name: str, prefix: str, group: str, mqtt5: bool = False) -> None:
        self.config = CloudConfig(data_dir=data_dir, mqtt_url=f"mqtt://127.0.0.1:{port}", topic_prefix=prefix)
        self.options = {"client_id": name, "shared_group": group, "mqtt5": mqtt5}

    def subscribe(self) -> _Worker:
        session = IngestWorker(self.config, **self.options)
        session.start()
        session.stop()
        return self

    def drain(self, expected: int) -> float:
        """Messages per second from ``start()`` until ``expected`` messages are stored."""
        worker = IngestWorker(self.config, **self.options)
        started = time.perf_counter()
        worker.start()
        while worker.stats.stored < expected:
            if worker.stats.dead_lettered or worker.stats.storage_errors:
                raise RuntimeError(f"the benchmark's messages should all store: {worker.stats}")
            time.sleep(0.002)
        elapsed = time.perf_counter() - started
        worker.stop()
        return expected / elapsed


def _worker_process_main(port: int, data_dir: Path, name: str) -> None:
    """One worker of a shared group in its own process: start on a line from stdin, stop at its end."""
    worker = IngestWorker(
        CloudConfig(data_dir=data_dir, mqtt_url=f"mqtt://127.0.0.1:{port}", topic_prefix="scale"),
        client_id=name,
        shared_group="scale",
    )
    sys.stdin.readline()
    worker.start()
    sys.stdin.read()
    worker.stop()


def _scale_out(port: int, folder: Path) -> float:
    """Feature rows per second of SCALE_OUT worker processes in one shared group writing one SQLite file."""
    data_dir = folder / "scale"
    names = [f"scale{i}" for i in range(SCALE_OUT)]
    for name in names:
        _Worker(port, data_dir, name, "scale", "scale").subscribe()
    _publish_in_another_process(port, folder, _payloads("scale", BATCH_MESSAGES, ROWS_PER_BATCH))
    command = [sys.executable, __file__, "worker", str(port), str(data_dir)]
    processes = [subprocess.Popen([*command, name], stdin=subprocess.PIPE, text=True) for name in names]
    time.sleep(2)  # let the interpreters import before the clock starts
    db = open_database(data_dir / "iotsphere.db")
    started = time.perf_counter()
    for process in processes:
        process.stdin.write("go\n")
        process.stdin.flush()
    while db.execute("SELECT count(*) FROM ingested_messages").fetchone()[0] < BATCH_MESSAGES:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    db.conn.close()
    for process in processes:
        process.stdin.close()
        process.wait(30)
    return BATCH_MESSAGES * ROWS_PER_BATCH / elapsed


def _read_seconds(folder: Path) -> float:
    """Seconds to read READ_ROWS stored feature rows back as a matrix (the rows are written directly, untimed)."""
    db = open_database(folder / "read.db")
    devices = 1000
    db["feature_sets"].insert({"version": "fs1", "names_json": json.dumps([f"f{i}" for i in range(FEATURES)])})
    values = np.random.default_rng(1).standard_normal((devices, FEATURES)).astype(np.float32)
    blobs = feature_codec.encode(values)
    with db.conn:
        for window in range(READ_ROWS // devices):
            end = iso(T0 + timedelta(minutes=window))
            db.conn.executemany(
                "INSERT INTO features (device_id, window_end, feature_set_version, values_f32, msg_id)"
                " VALUES (?,?,'fs1',?,'m')",
                [(f"h{d:04d}", end, blob) for d, blob in enumerate(blobs)],
            )
    started = time.perf_counter()
    stored = feature_codec.read_features(db.conn, "fs1")
    elapsed = time.perf_counter() - started
    db.conn.close()
    if stored.values.shape != (READ_ROWS, FEATURES) or not np.array_equal(stored.values[-devices:], values):
        raise RuntimeError("the training read did not give back what was stored")
    return elapsed


def run() -> dict:
    """Each consumer drains ROUNDS times, interleaved, on one broker; the best round of each is reported."""
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        folder = Path(tmp)
        broker, port = start_mosquitto(folder)
        try:
            bare = [_Bare(port, folder, f"bare{i}", "single") for i in range(ROUNDS)]
            worker = [_Worker(port, folder / f"w{i}", f"w{i}", "single", f"w{i}").subscribe() for i in range(ROUNDS)]
            worker5 = [
                _Worker(port, folder / f"v5-{i}", f"v5-{i}", "single", f"v5-{i}", mqtt5=True).subscribe()
                for i in range(ROUNDS)
            ]
            _publish_in_another_process(port, folder, _payloads("single", SINGLE_MESSAGES, 1))
            runs: dict[str, list[float]] = {"bare": [], "worker": [], "worker_mqtt5": []}
            for i in range(ROUNDS):
                runs["bare"].append(bare[i].drain(SINGLE_MESSAGES))
                runs["worker"].append(worker[i].drain(SINGLE_MESSAGES))
                runs["worker_mqtt5"].append(worker5[i].drain(SINGLE_MESSAGES))
            batched = [_Worker(port, folder / f"b{i}", f"b{i}", "batched", f"b{i}").subscribe() for i in range(ROUNDS)]
            _publish_in_another_process(port, folder, _payloads("batched", BATCH_MESSAGES, ROWS_PER_BATCH))
            runs["batched_rows"] = [consumer.drain(BATCH_MESSAGES) * ROWS_PER_BATCH for consumer in batched]
            runs["scale_out_rows"] = [_scale_out(port, folder)]
            read_seconds = _read_seconds(folder)
        finally:
            broker.terminate()
            broker.wait(10)
    best = {name: max(values) for name, values in runs.items()}
    ratio = best["worker"] / best["bare"]
    return {
        "single_record_messages": SINGLE_MESSAGES,
        "features_per_row": FEATURES,
        "rounds": ROUNDS,
        "bare_paho_executemany_msgs_per_s": round(best["bare"]),
        "worker_msgs_per_s": round(best["worker"]),
        "worker_to_bare_ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "ratio_met": ratio >= TARGET_RATIO,
        "worker_mqtt5_msgs_per_s": round(best["worker_mqtt5"]),
        "batched_messages": BATCH_MESSAGES,
        "rows_per_message": ROWS_PER_BATCH,
        "worker_feature_rows_per_s": round(best["batched_rows"]),
        "target_feature_rows_per_s": TARGET_ROWS_PER_S,
        "rows_target_met": best["batched_rows"] >= TARGET_ROWS_PER_S,
        "scale_out_worker_processes": SCALE_OUT,
        "scale_out_feature_rows_per_s": round(best["scale_out_rows"]),
        "read_rows": READ_ROWS,
        "read_seconds": round(read_seconds, 2),
        "target_read_seconds": TARGET_READ_SECONDS,
        "read_target_met": read_seconds < TARGET_READ_SECONDS,
        "all_rounds": {name: [round(v) for v in values] for name, values in runs.items()},
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["publish"]:
        _publish_main(int(sys.argv[2]), Path(sys.argv[3]))
    elif sys.argv[1:2] == ["worker"]:
        _worker_process_main(int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4])
    else:
        print(json.dumps(run(), indent=2))
