"""``iotsphere rollouts`` against a real data folder, director and Mosquitto; and the worker's pass."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from cloud.audit import AuditLog
from cloud.config import CloudConfig
from cloud.registry import MLModelRegistry
from cloud.rollouts import store
from cloud.rollouts.store import RolloutStatus, StageStatus
from cloud.rollouts.worker import RolloutWorker
from iotsphere.cli import main
from tests.edge.mqtt_helpers import wait_for
from tests.releases.conftest import PASSPHRASE
from tests.rollouts.conftest import GATEWAYS, NAME, PLAN, Cloud

pytestmark = pytest.mark.mqtt


def _run(config: CloudConfig, *args: str, exit_code: int = 0) -> str:
    env = {"IOTSPHERE_TOPIC_PREFIX": config.topic_prefix}
    result = CliRunner().invoke(main, ["rollouts", *args, "--data-dir", str(config.data_dir)], env=env)
    assert result.exit_code == exit_code, result.output
    return result.output


def test_start_advance_status_list_and_halt_from_the_command_line(cloud: Cloud):
    config = cloud.config
    started = _run(config, "start", NAME, "2", "--reason", "beats v1", "--stage", "20", "--stage", "100")
    assert started.startswith(f"#1 {NAME}=2 for all device types: running [20% running -> 100% pending]")
    canary = store.load(cloud.db, 1).stages[0].gateway_ids
    assert all(cloud.version_of(g)[0] == "2" for g in canary)
    assert f"stage 1 {canary[0]}: was 1, directed #" in started

    for gateway_id in canary:
        cloud.commit(gateway_id)
    advanced = _run(config, "advance", "1")
    assert "[20% passed -> 100% running]" in advanced
    status = json.loads(_run(config, "status", "1", "--json"))
    assert [d["decision"] for d in status["decisions"]][-2:] == ["stage_passed", "stage_started"]
    assert status["progress"].startswith("8 pending")

    halted = _run(config, "halt", "1", "--reason", "support calls", "--rollback")
    assert "rolled_back" in halted and "outcome: support calls" in halted
    assert all(cloud.version_of(g)[0] == "1" for g in GATEWAYS)
    assert [line.split()[0] for line in _run(config, "list", "--status", "rolled_back").splitlines()] == ["ID", "1"]
    assert _run(config, "list", "--status", "running") == "none\n"
    actions = [entry.action for entry in AuditLog(cloud.db).entries()]
    assert {"rollouts.started", "rollouts.stage_passed", "rollouts.rolled_back"} <= set(actions)

    refused = _run(config, "halt", "1", "--reason", "again", exit_code=1)
    assert "rollout #1 is rolled_back: only a running rollout can become halted" in refused
    assert "no rollout #9" in _run(config, "status", "9", exit_code=1)
    assert "must reach 100" in _run(config, "start", NAME, "2", "--reason", "x", "--stage", "50", exit_code=1)


def test_the_worker_advances_running_rollouts_on_its_own(cloud: Cloud):
    rollout = cloud.rollouts.start(NAME, "2", actor="ops", reason="beats v1", plan=PLAN)
    worker = RolloutWorker(cloud.config, PASSPHRASE, interval=0.05)
    worker.start()
    try:
        for gateway_id in rollout.stages[0].gateway_ids:
            cloud.commit(gateway_id)
        wait_for(
            lambda: store.load(cloud.db, rollout.rollout_id).stages[1].status is StageStatus.RUNNING, 30, "stage 2"
        )
        for gateway_id in rollout.stages[1].gateway_ids:
            cloud.commit(gateway_id)
        wait_for(lambda: store.load(cloud.db, rollout.rollout_id).status is RolloutStatus.COMPLETED, 30, "completion")
    finally:
        worker.stop()
    assert MLModelRegistry(cloud.db).get_active_model(NAME)["model_version"] == "2"
    assert {d["actor"] for d in store.decisions(cloud.db, rollout.rollout_id)[2:]} == {"rollout-worker"}
    assert worker.counts["errors"] == 0
