"""The demo end to end with small sizes: the loop closes on the real Mosquitto and on the embedded broker."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cloud.storage import open_database
from iotsphere.cli import main
from iotsphere.demo.options import DemoOptions
from iotsphere.demo.run import run_demo

MOSQUITTO = "mqtt://127.0.0.1:1883"


def _small(tmp_path: Path, **changes) -> DemoOptions:
    options = dict(
        duration_s=60,  # an upper bound: the run ends once the loop has closed
        gateways=2,
        heaters=5,
        speed=10800,  # the first prediction needs 12 simulated hours of readings: 4 s here
        data_dir=tmp_path / "demo",
        summary_json=tmp_path / "summary.json",
        history_heaters=60,
        history_days=60,
        candidates=("logistic_regression",),  # the quickest to train on a loaded machine
        status_every_s=2,
        stop_when_closed=True,
        world_change=None,  # act two has its own test (test_world_change.py)
    )
    return DemoOptions(**(options | changes))


def _assert_loop_closed(summary: dict, options: DemoOptions) -> None:
    assert summary["ok"], (summary["problems"], summary["timings_s"], summary["milestones_after_gateways_start_s"])
    assert json.loads(options.summary_json.read_text()) == json.loads(json.dumps(summary, default=str))
    assert len(summary["gateways"]) == options.gateways
    for gateway in summary["gateways"].values():
        assert gateway["active"] == {"component_failure": "1", "usage_pattern": "1", "anomaly": "1"}
        assert gateway["directed"] == gateway["active"]  # what the cloud's latest document tells it to run
        assert gateway["predictions_in_cloud"] > 0
        assert gateway["readings_sent"] > 0 and not gateway["bad_messages_at_agent"]
    assert summary["dead_letters"] == 0 and summary["rejected_updates"] == 0
    for phase in ("broker", "init", "history", "training", "release", "cloud_start", "gateways_start", "live"):
        assert phase in summary["timings_s"]

    db = open_database(options.data_dir / "cloud" / "iotsphere.db")
    try:
        stored = {
            row["gateway_id"]: row["n"]
            for row in db.query(
                "SELECT gateway_id, count(*) AS n FROM predictions WHERE model_version = '1' GROUP BY gateway_id"
            )
        }
        assert set(stored) == set(summary["gateways"])
        assert set(summary["predictions_by_model"]) == {"component_failure", "usage_pattern", "anomaly"}
        assert sum(stored.values()) == summary["predictions_received"]
        answer = summary["api_answer"]
        assert answer["status"] == 200
        body = answer["body"]
        assert body["model_version"] == "1" and body["prediction_type"] == "component_failure"
        newest = db.execute(
            "SELECT prediction_id FROM predictions WHERE device_id = ? AND prediction_type = 'component_failure'"
            " ORDER BY made_at DESC LIMIT 1",
            [body["device_id"]],
        ).fetchone()
        assert body["prediction_id"] == newest[0]
    finally:
        db.conn.close()


def test_loop_closes_on_mosquitto_with_telemetry_on_the_site_topics(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("IOTSPHERE_MQTT_URL", MOSQUITTO)
    # 2 sites × 5 heaters at 7200x: 1,200 readings a second over MQTT (gateway ids are unique to this run)
    options = _small(tmp_path, telemetry_over_mqtt=True, speed=7200)
    lines: list[str] = []
    summary = run_demo(options, echo=lines.append)
    assert not summary["embedded_broker"] and summary["mqtt_url"] == MOSQUITTO
    assert summary["topic_prefix"] == f"test-{isolated}/iotsphere/v1"
    assert summary["telemetry"] == "mqtt"
    _assert_loop_closed(summary, options)
    assert any("predictions" in line and "online 2/2" in line for line in lines)  # the live status line


def test_loop_closes_on_the_embedded_broker(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("IOTSPHERE_MQTT_URL", MOSQUITTO)  # asked for the embedded broker, it wins over both
    options = _small(tmp_path, embedded_broker=True)
    summary = run_demo(options, echo=lambda line: None)
    assert summary["embedded_broker"] and summary["mqtt_url"].startswith("mqtt://127.0.0.1:")
    assert summary["telemetry"] == "in-process"
    _assert_loop_closed(summary, options)


def test_cli_refuses_a_folder_that_is_not_fresh(tmp_path):
    (tmp_path / "old.txt").write_text("keep me")
    result = CliRunner().invoke(main, ["demo", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not empty" in result.output
    assert (tmp_path / "old.txt").read_text() == "keep me"


def test_a_loop_that_did_not_close_is_reported(tmp_path, isolated, monkeypatch):
    monkeypatch.delenv("IOTSPHERE_MQTT_URL", raising=False)
    monkeypatch.delenv("IOTSPHERE_TOPIC_PREFIX", raising=False)
    # one real second at 60x: twelve simulated hours of readings, needed before any prediction, never pass
    options = _small(tmp_path, duration_s=1, speed=60, stop_when_closed=False)
    summary = run_demo(options, echo=lambda line: None)
    assert not summary["ok"]
    assert "the cloud received no component_failure prediction made with version 1" in summary["problems"]
    assert summary["predictions_received"] == 0 and summary["api_answer"] is None
    # no broker named: the Mosquitto answering on 1883 carries it, on topics of this run alone
    assert not summary["embedded_broker"] and summary["mqtt_url"] == "mqtt://127.0.0.1:1883"
    assert summary["topic_prefix"].startswith("demo-") and summary["topic_prefix"].endswith("/iotsphere/v1")
