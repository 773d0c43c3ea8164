"""``edge run`` as a real process: online status on start, the last will on a crash, offline on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge_agent.cli import edge
from iotsphere.cli import main
from shared.messages import GatewayStatus
from tests.edge.mqtt_helpers import Collector, unique_prefix, wait_for

BROKER = "mqtt://127.0.0.1:1883"
PROJECT = Path(__file__).parents[2]


def test_help_explains_every_option():
    result = CliRunner().invoke(edge, ["run", "--help"])
    assert result.exit_code == 0
    for option in (
        "--gateway",
        "--cloud",
        "--mqtt",
        "--data-dir",
        "--api-key",
        "--trusted-root",
        "--prefix",
        "--outbox-features-mb",
        "--outbox-predictions-mb",
        "--horizon-days",
        "--local-api-port",
        "--local-api-host",
    ):
        assert option in result.output
    assert "IOTSPHERE_GATEWAY_KEY" in result.output and "IOTSPHERE_EDGE_TOKEN" in result.output


def test_outcome_help_lists_the_components_and_results():
    result = CliRunner().invoke(main, ["edge", "outcome", "--help"])
    assert result.exit_code == 0
    for word in ("--device", "--prediction-id", "--technician", "heating_element", "tank_leak", "replaced"):
        assert word in result.output


def test_an_outcome_for_a_data_dir_no_agent_ran_with_is_a_clear_error(tmp_path: Path):
    result = CliRunner().invoke(
        edge,
        ["outcome", "--data-dir", str(tmp_path), "--device", "dev-1", "--component", "sensor", "--result", "ok"],
    )
    assert result.exit_code == 1 and "no edge agent has run" in result.output
    assert not list(tmp_path.iterdir()), "nothing is created in the wrong folder"


def test_an_unusable_bound_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(
        edge, ["run", "--gateway", "gw-1", "--data-dir", str(tmp_path), "--outbox-features-mb", "0"]
    )
    assert result.exit_code == 2 and "--outbox-features-mb" in result.output


def test_edge_run_arms_the_fault_point_the_environment_names_and_refuses_a_bad_one(tmp_path: Path):
    """The agent never reads settings itself (pydantic-settings would cost it ~3 MB): the command hands it over."""
    result = CliRunner().invoke(
        edge, ["run", "--gateway", "gw-1", "--data-dir", str(tmp_path)], env={"IOTSPHERE_FAULT_POINT": "unplug"}
    )
    assert result.exit_code == 2 and "IOTSPHERE_FAULT_POINT='unplug'" in result.output
    assert "--fault-point" not in CliRunner().invoke(edge, ["run", "--help"]).output


def test_the_iotsphere_command_has_the_edge_group():
    result = CliRunner().invoke(main, ["edge", "run", "--help"])
    assert result.exit_code == 0 and "--trusted-root" in result.output


def test_cloud_without_a_trust_anchor_is_a_usage_error(tmp_path: Path):
    result = CliRunner().invoke(
        edge, ["run", "--gateway", "gw-1", "--cloud", "http://127.0.0.1:9", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--trusted-root" in result.output


def _start(gateway_id: str, prefix: str, data_dir: Path) -> subprocess.Popen:
    command = "from edge_agent.cli import edge; edge()"
    arguments = ["run", "--gateway", gateway_id, "--mqtt", BROKER, "--data-dir", str(data_dir), "--prefix", prefix]
    return subprocess.Popen(
        [sys.executable, "-c", command, *arguments],
        cwd=PROJECT,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.mqtt
def test_status_online_then_last_will_on_kill_then_clean_offline_on_sigterm(tmp_path: Path):
    gateway_id, prefix = f"gw-{uuid.uuid4().hex[:8]}", unique_prefix()
    status_topic = f"{prefix}/gw/{gateway_id}/up/status"
    watcher = Collector(BROKER, status_topic)

    def statuses() -> list[GatewayStatus]:
        return [GatewayStatus.model_validate_json(m.payload) for m in watcher.messages if m.payload]

    try:
        crashed = _start(gateway_id, prefix, tmp_path / "gw")
        wait_for(lambda: statuses() and statuses()[-1].online, timeout=20, what="an online status")
        crashed.send_signal(signal.SIGKILL)
        crashed.wait(10)
        wait_for(lambda: not statuses()[-1].online, what="the last will")
        assert statuses()[-1].health == "offline"

        count = len(statuses())
        running = _start(gateway_id, prefix, tmp_path / "gw")
        wait_for(lambda: len(statuses()) > count and statuses()[-1].online, timeout=20, what="online again")
        running.send_signal(signal.SIGTERM)
        assert running.wait(20) == 0
        assert "stopped" in running.stderr.read()
        wait_for(lambda: not statuses()[-1].online, what="the offline status of a clean stop")
    finally:
        watcher.client.publish(status_topic, b"", qos=1, retain=True).wait_for_publish(5)
        watcher.close()
