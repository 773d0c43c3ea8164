"""``iotsphere alerts`` on a real data folder, and the worker ``cloud serve`` runs feeding a real webhook receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

from cloud.alerts.worker import AlertWorker
from cloud.config import CloudConfig
from cloud.pipeline.runs import RunStore
from cloud.storage import open_database
from iotsphere.cli import main
from tests.alerts.test_webhook import Receiver


def _cloud_with_a_failed_run(tmp_path: Path) -> CloudConfig:
    config = CloudConfig(data_dir=tmp_path / "cloud")
    db = open_database(config.database_url)
    runs = RunStore(db)
    run = runs.create("component_failure", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC), "t")
    runs.claim(run.run_id)
    runs.fail(run.run_id, "boom")
    db.close()
    return config


def test_scan_list_ack_resolve_from_the_command_line(tmp_path: Path, monkeypatch) -> None:
    config = _cloud_with_a_failed_run(tmp_path)
    monkeypatch.setenv("IOTSPHERE_ACTOR", "cli:alice")
    data = ["--data-dir", str(config.data_dir)]
    runner = CliRunner()

    empty = runner.invoke(main, ["alerts", "list", *data])
    assert empty.exit_code == 0 and "none" in empty.output
    scanned = runner.invoke(main, ["alerts", "scan", *data])
    assert scanned.exit_code == 0 and "1 raised, 0 cleared" in scanned.output
    listed = json.loads(runner.invoke(main, ["alerts", "list", "--state", "open", "--json", *data]).output)
    [alert] = listed
    assert alert["kind"] == "training_failed"

    acked = runner.invoke(main, ["alerts", "ack", str(alert["id"]), *data])
    assert acked.exit_code == 0 and "acknowledged by cli:alice" in acked.output
    again = runner.invoke(main, ["alerts", "ack", str(alert["id"]), *data])
    assert again.exit_code != 0 and "cannot become acknowledged" in again.output
    resolved = runner.invoke(main, ["alerts", "resolve", str(alert["id"]), "--json", *data])
    assert json.loads(resolved.output)["resolved_by"] == "cli:alice"
    missing = runner.invoke(main, ["alerts", "resolve", "999", *data])
    assert missing.exit_code != 0 and "no alert 999" in missing.output


def test_the_serve_worker_raises_and_sends_to_the_webhook(tmp_path: Path, monkeypatch) -> None:
    config = _cloud_with_a_failed_run(tmp_path)
    receiver = Receiver()
    try:
        monkeypatch.setenv("IOTSPHERE_ALERT_WEBHOOK_URL", receiver.url)
        worker = AlertWorker(config, "http://127.0.0.1:9999")
        db = open_database(config.database_url)
        try:
            worker.step(db)
        finally:
            db.close()
            worker.stop()
        [body] = receiver.wait_for(1)
        assert body["alerts"][0]["labels"]["alertname"] == "training_failed"
    finally:
        receiver.server.shutdown()
