"""Fixtures: a real tiny ONNX model, an initialised data folder, the TUF folder served over real HTTP."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import onnxruntime
import paho.mqtt.client as mqtt
import pytest
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.linear_model import LogisticRegression
from tuf.ngclient import Updater

from cloud.config import CloudConfig
from cloud.releases import tuf_repo
from shared.director import format_time
from shared.messages import PredictionType
from shared.release import GoldenVectors, ReleaseFile, TensorSpec

PASSPHRASE = "correct horse battery staple"
FEATURES = ["temp_mean", "temp_std", "power_mean", "cycles"]


@dataclass(frozen=True)
class Artifacts:
    directory: Path
    release_json: bytes
    onnx_bytes: bytes
    release: ReleaseFile


def _train_onnx(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(60, len(FEATURES))).astype(np.float32)
    y = (x[:, 0] + rng.normal(scale=0.5, size=60) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    onnx_model = convert_sklearn(
        model, initial_types=[("features", FloatTensorType([None, len(FEATURES)]))], options={"zipmap": False}
    )
    return onnx_model.SerializeToString()


@pytest.fixture(scope="session")
def onnx_models() -> dict[int, bytes]:
    """Two different real ONNX files (trained with different seeds)."""
    return {seed: _train_onnx(seed) for seed in (1, 2)}


def write_artifacts(directory: Path, model_name: str, version: str, onnx_bytes: bytes) -> Artifacts:
    """What training leaves behind: ``model.onnx`` and a ``release.json`` with golden vectors from onnxruntime."""
    inputs = [[0.1, 0.2, 0.3, 0.4], [-1.0, 0.5, 0.0, 2.0]]
    session = onnxruntime.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    _, probabilities = session.run(None, {"features": np.array(inputs, dtype=np.float32)})
    release = ReleaseFile(
        model_name=model_name,
        model_version=version,
        prediction_type=PredictionType.COMPONENT_FAILURE,
        feature_set_version="1",
        feature_names=FEATURES,
        model_target=tuf_repo.model_target_path(model_name, version),
        model_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        model_length=len(onnx_bytes),
        inputs=[TensorSpec(name="features", shape=[None, len(FEATURES)])],
        outputs=[
            TensorSpec(name="label", shape=[None], dtype="int64"),
            TensorSpec(name="probabilities", shape=[None, 2]),
        ],
        golden=GoldenVectors(inputs=inputs, expected={"probabilities": probabilities.tolist()}),
        lineage={"trainer": "tests"},
        created_at=format_time(datetime.now(UTC)),
    )
    directory.mkdir(parents=True, exist_ok=True)
    release_json = release.to_json()
    (directory / "release.json").write_bytes(release_json)
    (directory / "model.onnx").write_bytes(onnx_bytes)
    return Artifacts(directory, release_json, onnx_bytes, release)


@pytest.fixture
def config(tmp_path: Path) -> CloudConfig:
    return CloudConfig(
        data_dir=tmp_path / "cloud",
        mqtt_url="mqtt://127.0.0.1:1883",
        topic_prefix=f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1",
    )


@pytest.fixture
def initialized(config: CloudConfig) -> CloudConfig:
    tuf_repo.init_repository(config, PASSPHRASE)
    return config


@pytest.fixture
def artifacts(tmp_path: Path, onnx_models: dict[int, bytes]) -> Callable[..., Artifacts]:
    def make(model_name: str = "component_failure", version: str = "1", seed: int = 1) -> Artifacts:
        return write_artifacts(tmp_path / "artifacts" / model_name / version, model_name, version, onnx_models[seed])

    return make


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the stdlib's parameter name
        pass


@pytest.fixture
def tuf_server(initialized: CloudConfig) -> Iterator[str]:
    """The TUF folder over real HTTP on 127.0.0.1, as a gateway would reach it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(initialized.tuf_dir)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_updater(tmp_path: Path, initialized: CloudConfig, tuf_server: str) -> Callable[..., Updater]:
    """A gateway-side ngclient Updater bootstrapped with the root from init.

    Each call is a new Updater (ngclient refreshes once per instance); the same ``gateway`` name
    reuses that gateway's metadata cache, as a gateway does across update checks.
    """
    root = tuf_repo.trusted_root_bytes(initialized)

    def make(gateway: str | None = None) -> Updater:
        client_dir = tmp_path / f"gateway-{gateway or uuid.uuid4().hex[:6]}"
        (client_dir / "metadata").mkdir(parents=True, exist_ok=True)
        return Updater(
            metadata_dir=str(client_dir / "metadata"),
            metadata_base_url=f"{tuf_server}/metadata/",
            target_dir=str(client_dir / "targets"),
            target_base_url=f"{tuf_server}/targets/",
            bootstrap=root,
        )

    return make


def clear_retained(config: CloudConfig, gateway_ids: list[str]) -> None:
    """Remove this test's retained documents from the shared broker."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", 1883)
    client.loop_start()
    try:
        for gateway_id in gateway_ids:
            topic = f"{config.topic_prefix}/gw/{gateway_id}/down/desired"
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


def released_cloud(tmp_path: Path, onnx_models: dict[int, bytes], gateway_ids: list[str], name: str) -> CloudConfig:
    """A cloud data folder under a unique topic prefix: versions 1 and 2 of ``name`` signed into a real TUF
    repository and recorded as released, and ``gateway_ids`` seen."""
    from cloud.releases.model_rows import record_release
    from cloud.storage import iso, open_database
    from tests.rows import insert_rows

    config = CloudConfig(
        data_dir=tmp_path / "cloud",
        mqtt_url="mqtt://127.0.0.1:1883",
        topic_prefix=f"test-{uuid.uuid4().hex[:8]}/iotsphere/v1",
    )
    tuf_repo.init_repository(config, PASSPHRASE)
    db = open_database(config.database_url)
    try:
        for version, seed in (("1", 1), ("2", 2)):
            made = write_artifacts(tmp_path / "artifacts" / version, name, version, onnx_models[seed])
            record_release(db, tuf_repo.add_release(config, PASSPHRASE, made.release_json, made.onnx_bytes))
        insert_rows(db, "gateways", ({"gateway_id": g, "last_seen": iso(datetime.now(UTC))} for g in gateway_ids))
    finally:
        db.close()
    return config
