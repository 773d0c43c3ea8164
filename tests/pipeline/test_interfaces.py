"""The pipeline through its user interfaces: REST on a real `iotsphere cloud serve` (with its training worker),
role checks, and the `iotsphere train` CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest
from click.testing import CliRunner

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.storage import open_database
from iotsphere.cli import main
from tests.api.conftest import auth, key_per_role
from tests.private_broker import free_port


@pytest.fixture
def served(config: CloudConfig) -> Iterator[tuple[httpx.Client, dict[Role, str]]]:
    """`iotsphere cloud serve` with only its training worker beside the API, in its own process."""
    db = open_database(config.database_url)
    tokens = key_per_role(db)
    db.close()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "IOTSPHERE_KEY_PASSPHRASE"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from iotsphere.cli import main; main()",
            "cloud",
            "serve",
            "--port",
            str(port),
            "--no-ingest",
            "--no-publisher",
            "--data-dir",
            str(config.data_dir),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if client.get("/api/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()[-2000:]
                time.sleep(0.2)
            yield client, tokens
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0


def test_operators_trigger_runs_that_the_served_worker_executes(
    served: tuple[httpx.Client, dict[Role, str]], span: tuple[datetime, datetime]
):
    http, tokens = served
    body = {
        "model_name": "anomaly",
        "training_data_start_date": span[0].isoformat(),
        "training_data_end_date": span[1].isoformat(),
    }
    assert http.post("/api/training/runs", json=body, headers=auth(tokens[Role.VIEWER])).status_code == 403
    assert http.post("/api/training/runs", json=body).status_code == 401
    refused = http.post(
        "/api/training/runs", json={**body, "model_name": "toaster"}, headers=auth(tokens[Role.OPERATOR])
    )
    assert refused.status_code == 400 and "unknown model" in refused.json()["detail"]

    accepted = http.post("/api/training/runs", json=body, headers=auth(tokens[Role.OPERATOR]))
    assert accepted.status_code == 202 and accepted.json()["status"] == "queued"
    run_id = accepted.json()["run_id"]
    deadline = time.monotonic() + 240
    while True:
        run = http.get(f"/api/training/runs/{run_id}", headers=auth(tokens[Role.VIEWER])).json()
        if run["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert run["status"] == "succeeded", run["error"]
    assert run["model_version"] == "1" and run["dataset_id"] and run["progress"] == 1.0
    messages = [line["message"] for line in run["logs"]]
    assert any("not signing into TUF" in m for m in messages)  # no passphrase given to this server
    later = http.get(
        f"/api/training/runs/{run_id}",
        params={"after_log_id": run["logs"][-2]["id"]},
        headers=auth(tokens[Role.VIEWER]),
    ).json()
    assert [line["message"] for line in later["logs"]] == messages[-1:]
    listed = http.get("/api/training/runs", params={"model_name": "anomaly"}, headers=auth(tokens[Role.VIEWER]))
    assert [r["run_id"] for r in listed.json()] == [run_id]
    assert http.get("/api/training/runs/nope", headers=auth(tokens[Role.VIEWER])).status_code == 404
    cancel = http.post(f"/api/training/runs/{run_id}/cancel", headers=auth(tokens[Role.OPERATOR]))
    assert cancel.status_code == 409

    evaluated = http.post(
        "/api/training/evaluations/anomaly/1",
        json={"test_dataset_id": run["dataset_id"]},
        headers=auth(tokens[Role.OPERATOR]),
    )
    assert evaluated.status_code == 201 and evaluated.json()["dataset_id"] == run["dataset_id"]
    history = http.get("/api/training/evaluations/anomaly", headers=auth(tokens[Role.VIEWER])).json()
    assert evaluated.json()["id"] in [e["id"] for e in history]
    missing = http.post("/api/training/evaluations/anomaly/9", json={}, headers=auth(tokens[Role.OPERATOR]))
    assert missing.status_code == 404


def test_schedules_over_http(served: tuple[httpx.Client, dict[Role, str]]):
    http, tokens = served
    operator, viewer = auth(tokens[Role.OPERATOR]), auth(tokens[Role.VIEWER])
    made = http.post(
        "/api/training/schedules", json={"model_name": "usage_pattern", "schedule": "0 4 * * *"}, headers=operator
    )
    assert made.status_code == 201 and made.json()["cron"] == "0 4 * * *"
    bad = http.post(
        "/api/training/schedules", json={"model_name": "usage_pattern", "schedule": "sometimes"}, headers=operator
    )
    assert bad.status_code == 400 and "cron" in bad.json()["detail"]
    assert (
        http.post(
            "/api/training/schedules", json={"model_name": "usage_pattern", "schedule": "daily"}, headers=viewer
        ).status_code
        == 403
    )
    assert [s["schedule_id"] for s in http.get("/api/training/schedules", headers=viewer).json()] == [
        made.json()["schedule_id"]
    ]
    assert http.delete(f"/api/training/schedules/{made.json()['schedule_id']}", headers=operator).status_code == 200
    assert http.get("/api/training/schedules", headers=viewer).json() == []
    assert http.delete("/api/training/schedules/99", headers=operator).status_code == 404


def test_the_train_cli(config: CloudConfig, span: tuple[datetime, datetime]):
    runner = CliRunner()
    data = ["--data-dir", str(config.data_dir)]

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(main, [*args, *data], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    out = run(
        "train",
        "run",
        "anomaly",
        "--from",
        f"{span[0]:%Y-%m-%d}",
        "--to",
        f"{span[1]:%Y-%m-%d}",
        "--now",
        "--no-release",
    )
    assert "queued training run" in out and "succeeded" in out and "→ version 1" in out
    run_id = out.split("queued training run ")[1].split()[0]
    assert run_id in run("train", "runs", "--model", "anomaly")
    shown = run("train", "show", run_id)
    assert "dataset " in shown and '"status": "succeeded"' in shown
    evaluated = run("train", "evaluate", "anomaly", "1", "--json")
    assert '"model_version": "1"' in evaluated
    failed = run("train", "run", "anomaly", "--from", "2020-01-01", "--to", "2020-02-01", "--now", code=1)
    assert "failed" in failed

    assert "schedule 1: usage_pattern weekly (@weekly)" in run("train", "schedule", "usage_pattern", "weekly")
    assert [line.split()[1:3] for line in run("train", "schedules").splitlines()] == [
        ["MODEL", "SCHEDULE"],
        ["usage_pattern", "weekly"],
    ]
    assert "invalid schedule" in run("train", "schedule", "usage_pattern", "whenever", code=1)
    assert "removed schedule 1" in run("train", "unschedule", "1")
    assert "no training schedule 1" in run("train", "unschedule", "1", code=1)
    assert "no training run" in run("train", "cancel", "nope", code=1)
    run("train", "run", "anomaly", "--from", f"{span[0]:%Y-%m-%d}", "--to", f"{span[1]:%Y-%m-%d}", "--no-release")
    worked = run("train", "worker", "--once")
    assert "succeeded: anomaly version 2" in worked  # the failed run took no version number
