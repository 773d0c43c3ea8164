"""``iotsphere sim history`` and ``iotsphere sim run`` as an operator runs them."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner, Result

from firmware_sim.history import load_history
from iotsphere.cli import main
from shared.features import FEATURE_NAMES
from shared.telemetry import Telemetry, parse_telemetry
from shared.topics import DEFAULT_MQTT_URL, telemetry_wildcard
from tests.edge.mqtt_helpers import Collector


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


def test_history_makes_the_output_folder_and_refuses_one_it_cannot_make_before_simulating(tmp_path):
    """The README's ``--out var/history.npz`` on a fresh clone, where ``var/`` does not exist yet."""
    out = tmp_path / "var" / "nested" / "history.npz"
    args = ["sim", "history", "--heaters", "2", "--days", "1", "--out", out]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert len(load_history(out).device_ids) == 2
    (tmp_path / "file").write_text("")
    args = ["sim", "history", "--heaters", "2", "--days", "1", "--out", tmp_path / "file" / "history.npz"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2 and "cannot make the folder" in result.output
    assert "simulated" not in result.output


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


def run_two_heaters(*extra: str, env: dict[str, str] | None = None) -> tuple[Result, list[Telemetry]]:
    """``sim run`` of two heaters for a second on a fresh gateway, and the readings the broker delivered."""
    gateway = f"gw-{uuid.uuid4().hex[:8]}"
    collector = Collector(DEFAULT_MQTT_URL, telemetry_wildcard(gateway))
    try:
        args = ["sim", "run", "--gateway", gateway, "--heaters", "2", "--speed", "600", "--duration", "1", *extra]
        result = CliRunner().invoke(main, args, env=env)
    finally:
        collector.close()
    assert result.exit_code == 0, result.output
    readings = [parse_telemetry(p) for p in collector.payloads()]
    assert len(readings) >= 2 and {r.device_id for r in readings} == {f"{gateway}-00000", f"{gateway}-00001"}
    return result, readings


@pytest.mark.mqtt
def test_run_publishes_to_the_broker_named_in_the_environment():
    result, _ = run_two_heaters(env={"IOTSPHERE_MQTT_URL": "mqtt://127.0.0.1:1883"})
    assert "published" in result.stderr and "(0 failed)" in result.stderr


def test_run_reports_an_unreachable_broker():
    args = ["sim", "run", "--gateway", "gw-x", "--duration", "1", "--mqtt", "mqtt://127.0.0.1:1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and "cannot reach the broker" in result.output


def test_history_with_a_world_change(tmp_path):
    out = tmp_path / "changed.npz"
    args = ["sim", "history", "--heaters", "10", "--days", "3", "--seed", "5", "--start", "2025-07-01", "--out", out]
    args += ["--change-at", "1.5", "--inlet-shift-k", "-8", "--new-anode-share", "0.5"]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "world change from day 1.5: inlet -8 K over 5 days, new anode on 5 heaters" in result.stdout
    history = load_history(out)
    assert sum(t.endswith("-al") for t in history.device_types) == 5
    inlet = history.features[:, FEATURE_NAMES.index("inlet_temperature_c")].reshape(-1, 10)
    assert inlet[-1].mean() < inlet[0].mean() - 1.0  # a day and a half into the 5-day ramp of -8 K


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--new-anode-share", "0.5"], "--new-anode-share: these set what changes, so give --change-at DAYS too"),
        (["--change-at", "3"], "the change at day 3 comes after the history's 2 days"),
        (["--change-at", "1", "--inlet-shift-k", "-20"], "--inlet-shift-k': -20.0 is not in the range -15<=x<=15"),
    ],
)
def test_history_refuses_a_change_it_cannot_make(tmp_path, extra, message):
    args = ["sim", "history", "--heaters", "2", "--days", "2", "--out", tmp_path / "x", *extra]
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "x").exists()


@pytest.mark.mqtt
def test_run_publishes_the_changed_world():
    result, readings = run_two_heaters("--mqtt", DEFAULT_MQTT_URL, "--change-at", "0", "--new-anode-share", "1")
    assert "world change from" in result.stderr
    assert all(r.device_type.endswith("-al") for r in readings)


@pytest.mark.mqtt
def test_run_publishes_a_field_calibrated_fleet_and_says_so():
    result, readings = run_two_heaters("--calibration", "field")
    assert "calibration field" in result.stderr
    assert all(r.device_type.startswith("nwp500-") for r in readings)
