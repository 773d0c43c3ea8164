"""A staged rollout whose completion fails as a whole (a real SQLite fault while the fleet's desired state changes)
leaves the registry as it was and stays running with the reason; the next advance completes it."""

from __future__ import annotations

import pytest

from cloud.registry import MLModelRegistry
from cloud.releases import director
from cloud.rollouts import store
from cloud.rollouts.plan import RolloutPlan
from cloud.rollouts.store import RolloutStatus
from tests.rollouts.conftest import GATEWAYS, NAME, Cloud

pytestmark = pytest.mark.mqtt


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
