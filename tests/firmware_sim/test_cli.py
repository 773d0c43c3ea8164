"""``iotsphere sim history`` and ``iotsphere sim run`` as an operator runs them."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner

from cloud.cli import main
from firmware_sim.history import load_history
from shared.telemetry import parse_telemetry
from shared.topics import telemetry_wildcard


def test_history_writes_a_loadable_file_and_a_summary(tmp_path):
    out = tmp_path / "hist.npz"
    args = ["sim", "history", "--heaters", "20", "--days", "2", "--seed", "5", "--start", "2025-02-01", "--out", out]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    history = load_history(out)
    assert len(history.features) == 5 * 20 and len(history.device_ids) == 20
    assert "100 rows of 32 features" in result.stdout
    assert "failures:" in result.stdout and "heater-days/s" in result.stdout
    assert "simulated 2/2 days" in result.stderr


def test_history_refuses_a_window_step_that_is_not_whole_blocks(tmp_path):
    args = ["sim", "history", "--heaters", "2", "--days", "2", "--window-every-hours", "9", "--out", tmp_path / "x"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2 and "multiple of 6" in result.output
    assert not (tmp_path / "x").exists()


def test_help_explains_every_option():
    result = CliRunner().invoke(main, ["sim", "run", "--help"])
    for option in ("--gateway", "--heaters", "--speed", "--mqtt", "--seed", "--duration", "--prefix"):
        assert option in result.output
    assert "IOTSPHERE_MQTT_URL" in result.output


@pytest.mark.mqtt
def test_run_publishes_to_the_broker_named_in_the_environment():
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    received, subscribed = [], threading.Event()
    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    listener.on_message = lambda client, userdata, message: received.append(message.payload)
    listener.on_subscribe = lambda *args: subscribed.set()
    listener.connect("127.0.0.1", 1883)
    listener.subscribe(telemetry_wildcard(gateway), qos=1)
    listener.loop_start()
    try:
        assert subscribed.wait(5)
        args = ["sim", "run", "--gateway", gateway, "--heaters", "2", "--speed", "600", "--duration", "1"]
        result = CliRunner().invoke(main, args, env={"IOTSPHERE_MQTT_URL": "mqtt://127.0.0.1:1883"})
    finally:
        listener.loop_stop()
        listener.disconnect()
    assert result.exit_code == 0, result.output
    assert "published" in result.stderr and "(0 failed)" in result.stderr
    assert len(received) >= 2 and {parse_telemetry(p).device_id for p in received} == {
        f"{gateway}-00000",
        f"{gateway}-00001",
    }


def test_run_reports_an_unreachable_broker():
    args = ["sim", "run", "--gateway", "gw-x", "--duration", "1", "--mqtt", "mqtt://127.0.0.1:1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "cannot reach the broker" in result.output
