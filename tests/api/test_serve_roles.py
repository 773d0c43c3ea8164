"""``cloud serve --role``: which workers each role starts, the ``--no-*`` flags within them, and a process without
the API serving only its health and metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cloud.api.cli import ROLES, _workers
from cloud.config import CloudConfig
from cloud.storage import open_database
from tests.private_broker import free_port, listening

JOBS = [
    "DirectorPublisher",
    "RetrainingJobs",
    "RolloutWorker",
    "AlertWorker",
    "AuditCheckpointWorker",
    "RetentionWorker",
]


def _started(config: CloudConfig, roles: set[str], **off: bool) -> list[str]:
    flags = {name: not off.get(name, False) for name in ("ingest", "publisher", "training", "rollouts", "alerts")}
    return [type(worker).__name__ for worker in _workers(config, roles, **flags, external_url="http://127.0.0.1:8080")]


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({"api"}, []),
        ({"ingest"}, ["IngestWorker"]),
        ({"training"}, ["TrainingWorker"]),
        ({"jobs"}, JOBS),
        ({"ingest", "training"}, ["IngestWorker", "TrainingWorker"]),
        (set(ROLES), ["IngestWorker", "TrainingWorker", *JOBS]),
    ],
)
def test_each_role_starts_its_workers(tmp_path: Path, roles: set[str], expected: list[str]) -> None:
    assert _started(CloudConfig(data_dir=tmp_path), roles) == expected


def test_the_no_flags_still_leave_workers_out(tmp_path: Path) -> None:
    started = _started(CloudConfig(data_dir=tmp_path), set(ROLES), ingest=True, training=True, alerts=True)
    assert started == ["DirectorPublisher", "RolloutWorker", "AuditCheckpointWorker", "RetentionWorker"]


def test_a_process_without_the_api_serves_health_and_metrics_only(tmp_path: Path) -> None:
    port, config = free_port(), CloudConfig(data_dir=tmp_path / "cloud")
    config.data_dir.mkdir()
    open_database(config.database_url).close()  # a cloud's database (what `cloud init` starts with)
    command = [sys.executable, "-c", "from iotsphere.cli import main; main()", "cloud", "serve", "--role", "jobs"]
    command += ["--port", str(port), "--data-dir", str(config.data_dir), "--no-publisher"]
    env = {key: value for key, value in os.environ.items() if key != "IOTSPHERE_KEY_PASSPHRASE"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not listening(port) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/api/health").status_code == 404  # no API in this process
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "leading 'retraining'" in output and "leading 'alerts'" in output
