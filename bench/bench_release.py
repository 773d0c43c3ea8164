"""Signed releases: signing into TUF, a gateway's ngclient update over HTTP, director documents for a fleet.

Everything real: encrypted keys on disk, TUF metadata files, ngclient over a local HTTP server,
SQLite, and the Mosquitto broker on 127.0.0.1:1883 (retained documents are cleared afterwards).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.ensemble import RandomForestClassifier
from tuf.ngclient import Updater

from cloud.config import CloudConfig
from cloud.releases import director, keystore, tuf_repo
from cloud.releases.publisher import RetainedPublisher, desired_topic, publish_pending
from cloud.storage import iso, open_database
from shared.director import format_time
from shared.limits import MAX_SAFE_INT
from shared.messages import PredictionType
from shared.release import GoldenVectors, ReleaseFile, TensorSpec

PASSPHRASE = "bench-passphrase"
RELEASES = 30
GATEWAYS = 1000
FEATURES = 12


def _onnx_model() -> bytes:
    """A forest about the size of a real component model (hundreds of kB)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, FEATURES)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=40, max_depth=10, random_state=3).fit(x, y)
    onnx_model = convert_sklearn(
        forest, initial_types=[("features", FloatTensorType([None, FEATURES]))], options={"zipmap": False}
    )
    return onnx_model.SerializeToString()


def _release_json(version: str, onnx_bytes: bytes) -> bytes:
    return ReleaseFile(
        model_name="component_failure",
        model_version=version,
        prediction_type=PredictionType.COMPONENT_FAILURE,
        feature_set_version="1",
        feature_names=[f"f{i}" for i in range(FEATURES)],
        model_target=tuf_repo.model_target_path("component_failure", version),
        model_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        model_length=len(onnx_bytes),
        inputs=[TensorSpec(name="features", shape=[None, FEATURES])],
        outputs=[TensorSpec(name="probabilities", shape=[None, 2])],
        golden=GoldenVectors(inputs=[[0.0] * FEATURES], expected={"probabilities": [[0.5, 0.5]]}),
        created_at=format_time(datetime.now(UTC)),
    ).to_json()


def _serve(directory: Path) -> tuple[ThreadingHTTPServer, str]:
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            """Silence the per-request log lines, which would swamp the figures."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _timed(action) -> tuple[float, object]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def run() -> dict:
    onnx_bytes = _onnx_model()
    with tempfile.TemporaryDirectory() as folder:
        config = CloudConfig(data_dir=Path(folder), topic_prefix=f"bench-{uuid.uuid4().hex[:8]}/iotsphere/v1")
        init_seconds, _ = _timed(lambda: tuf_repo.init_repository(config, PASSPHRASE))

        add_seconds = []
        for number in range(1, RELEASES + 1):
            version = str(number)
            seconds, _ = _timed(
                lambda v=version: tuf_repo.add_release(config, PASSPHRASE, _release_json(v, onnx_bytes), onnx_bytes)
            )
            add_seconds.append(seconds)

        server, url = _serve(config.tuf_dir)
        try:
            client = Path(folder) / "gateway"
            (client / "metadata").mkdir(parents=True)
            updater = Updater(
                str(client / "metadata"),
                f"{url}/metadata/",
                str(client / "targets"),
                f"{url}/targets/",
                bootstrap=tuf_repo.trusted_root_bytes(config),
            )
            refresh_seconds, _ = _timed(updater.refresh)
            info = updater.get_targetinfo(tuf_repo.model_target_path("component_failure", str(RELEASES)))
            download_seconds, _ = _timed(lambda: updater.download_target(info))
        finally:
            server.shutdown()
            server.server_close()

        db = open_database(config.database_path)
        gateways = [f"gw-{n:04d}" for n in range(GATEWAYS)]
        # one gateway in a hundred reports the largest director sequence there is: it fails alone
        seen = iso(datetime.now(UTC))
        db["gateways"].insert_all(
            {"gateway_id": g, "last_seen": seen, "director_sequence": MAX_SAFE_INT if n % 100 == 0 else n}
            for n, g in enumerate(gateways)
        )
        key = keystore.director_key(config.keys_dir, PASSPHRASE)
        desired = {"component_failure": director.desired_model(config, "component_failure", str(RELEASES))}
        issue_seconds, issued = _timed(lambda: director.issue_documents(config, db, key, gateways, desired))
        publish_seconds, sent = _timed(lambda: publish_pending(config, db))
        with RetainedPublisher(config.mqtt_url) as publisher:
            for gateway_id in gateways:
                publisher.publish(desired_topic(config, gateway_id), b"")
        db.conn.close()

    ordered = sorted(add_seconds)
    return {
        "model_bytes": len(onnx_bytes),
        "init_seconds": round(init_seconds, 3),
        "add_release_seconds": {
            "first": round(add_seconds[0], 3),
            "median": round(ordered[len(ordered) // 2], 3),
            f"after_{RELEASES}_releases": round(add_seconds[-1], 3),
        },
        "gateway_first_refresh_seconds": round(refresh_seconds, 3),
        "gateway_model_download_seconds": round(download_seconds, 3),
        "director": {
            "gateways": GATEWAYS,
            "issue_and_sign_per_second": round(GATEWAYS / issue_seconds),
            "directed": len(issued.documents),
            "not_directed_at_the_sequence_bound": len(issued.failures),
            "publish_retained_qos1_per_second": round(len(sent) / publish_seconds),
        },
        "targets": {
            "add_release_seconds_max": 2.0,
            "gateway_refresh_plus_download_seconds_max": 2.0,
            "issue_1000_documents_seconds_max": 10.0,
            "publish_1000_documents_seconds_max": 10.0,
        },
        "met": {
            "add_release": max(add_seconds) < 2.0,
            "gateway_update": refresh_seconds + download_seconds < 2.0,
            "issue": issue_seconds < 10.0,
            "publish": publish_seconds < 10.0,
        },
    }
