"""Faults that fail directing as a whole (a SQLite trigger ending the transaction) leave a staged rollout as it was:
at completion the registry is unchanged and the rollout stays running with the reason; in an automatic rollback
the stage stays running and no gateway is half rolled back. The next advance, the fault gone, does it all."""

from __future__ import annotations

import pytest

from cloud.registry import MLModelRegistry
from cloud.releases import director
from cloud.rollouts import store
from cloud.rollouts.plan import RolloutPlan
from cloud.rollouts.store import RolloutStatus, StageStatus
from tests.rollouts.conftest import GATEWAYS, NAME, PLAN, Cloud

# SQLite's RAISE(ROLLBACK) in a trigger stands in for a database failing mid-transaction
pytestmark = [pytest.mark.mqtt, pytest.mark.sqlite_only]


def test_a_fault_at_completion_changes_nothing_and_the_next_advance_completes(cloud: Cloud):
    rollout = cloud.rollouts.start(NAME, "2", actor="ops", reason="beats v1", plan=RolloutPlan(percentages=(100,)))
    for gateway_id in GATEWAYS:
        cloud.commit(gateway_id)
    cloud.db.execute(
        "CREATE TRIGGER lose_transaction BEFORE UPDATE ON director_fleet "
        "BEGIN SELECT RAISE(ROLLBACK, 'disk I/O error'); END"
    )

    stalled = cloud.rollouts.advance(rollout.rollout_id, actor="tests")

    assert stalled.status is RolloutStatus.RUNNING
    last = store.decisions(cloud.db, rollout.rollout_id)[-1]
    assert last["decision"] == "completion_failed" and "the registry is unchanged" in last["reason"]
    registry = MLModelRegistry(cloud.db)
    assert registry.get_active_model(NAME)["model_version"] == "1" and len(registry.history(NAME)) == 1
    assert director.fleet_desired(cloud.db)[NAME].version == "1"

    cloud.db.execute("DROP TRIGGER lose_transaction")
    done = cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    assert done.status is RolloutStatus.COMPLETED
    assert registry.get_active_model(NAME)["model_version"] == "2"
    assert director.fleet_desired(cloud.db)[NAME].version == "2"


def test_a_fault_in_an_automatic_rollback_changes_nothing_and_the_next_advance_rolls_back(cloud: Cloud):
    before = {g: cloud.version_of(g) for g in GATEWAYS}
    rollout = cloud.rollouts.start(NAME, "2", actor="ops", reason="beats v1", plan=PLAN)
    canary = rollout.stages[0].gateway_ids
    for gateway_id in canary:
        cloud.reject(gateway_id)
    directed = {g: cloud.version_of(g) for g in canary}
    cloud.db.execute(
        "CREATE TRIGGER lose_transaction BEFORE UPDATE ON director_documents "
        f"WHEN NEW.gateway_id = '{canary[1]}' BEGIN SELECT RAISE(ROLLBACK, 'disk I/O error'); END"
    )

    with pytest.raises(director.DirectingFailed, match="disk I/O error"):
        cloud.rollouts.advance(rollout.rollout_id, actor="tests")

    record = store.load(cloud.db, rollout.rollout_id)
    assert record.status is RolloutStatus.RUNNING and record.stages[0].status is StageStatus.RUNNING
    assert {g: cloud.version_of(g) for g in canary} == directed, "no gateway half rolled back"
    assert [d["decision"] for d in store.decisions(cloud.db, rollout.rollout_id)][-1] == "stage_started"

    cloud.db.execute("DROP TRIGGER lose_transaction")
    rolled = cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    assert rolled.status is RolloutStatus.ROLLED_BACK
    assert all(cloud.version_of(g) == ("1", before[g][1] + 2) for g in canary)
