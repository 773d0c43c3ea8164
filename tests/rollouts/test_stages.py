"""Staged rollouts through the real director: canary, the rest, production; halts and rollbacks with reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.registry import MLModelRegistry
from cloud.releases import director
from cloud.releases.keystore import director_key, key_info
from cloud.rollouts import store
from cloud.rollouts.automation import AUTO_CANARY_ENV, start_rollout
from cloud.rollouts.engine import RolloutRefused
from cloud.rollouts.plan import RolloutPlan
from cloud.rollouts.store import RolloutStatus, StageStatus
from shared.director import verify_director
from tests.registry.test_http import retained_document
from tests.releases.conftest import PASSPHRASE
from tests.rollouts.conftest import GATEWAYS, NAME, PLAN, Cloud

pytestmark = pytest.mark.mqtt


def _start(cloud: Cloud, plan: RolloutPlan = PLAN, now: datetime | None = None):
    return cloud.rollouts.start(NAME, "2", actor="ops-alice", reason="beats v1 on the holdout", plan=plan, now=now)


def _decisions(cloud: Cloud, rollout_id: int) -> list[str]:
    return [d["decision"] for d in store.decisions(cloud.db, rollout_id)]


def _trusted(cloud: Cloud) -> dict:
    key = director_key(cloud.config.keys_dir, PASSPHRASE)
    return {key_info("director", key).keyid: key.public_key()}


def test_canary_passes_then_the_rest_then_production_switches_with_history(cloud: Cloud):
    before = {g: cloud.version_of(g) for g in GATEWAYS}
    rollout = _start(cloud)
    canary, rest = rollout.stages[0].gateway_ids, rollout.stages[1].gateway_ids
    assert len(canary) == 2 and sorted(canary + rest) == GATEWAYS
    assert all(cloud.version_of(g) == ("2", before[g][1] + 1) for g in canary)
    assert all(cloud.version_of(g) == before[g] for g in rest), "the rest wait for the canary"
    document = retained_document(cloud.config, canary[0])  # signed and retained on the real broker
    assert (
        verify_director(document.to_json(), _trusted(cloud), canary[0], before[canary[0]][1])
        .signed.models[NAME]
        .version
        == "2"
    )

    cloud.commit(canary[0])
    waiting = cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    assert waiting.stages[0].status is StageStatus.RUNNING and waiting.status is RolloutStatus.RUNNING

    cloud.commit(canary[1])
    second = cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    assert [s.status for s in second.stages] == [StageStatus.PASSED, StageStatus.RUNNING]
    assert all(cloud.version_of(g) == ("2", before[g][1] + 1) for g in rest)
    assert MLModelRegistry(cloud.db).get_active_model(NAME)["model_version"] == "1", "production waits for the end"

    for gateway_id in rest:
        cloud.commit(gateway_id)
    sequences = {g: cloud.version_of(g) for g in GATEWAYS}
    done = cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    assert done.status is RolloutStatus.COMPLETED and done.finished_at is not None
    assert {g: cloud.version_of(g) for g in GATEWAYS} == sequences, "completion re-directs nobody"
    registry = MLModelRegistry(cloud.db)
    assert registry.get_active_model(NAME)["model_version"] == "2"
    latest = registry.history(NAME)[0]
    assert (latest["action"], latest["from_version"], latest["to_version"]) == ("promote", "1", "2")
    assert latest["actor"] == f"ops-alice via rollout #{rollout.rollout_id}"
    assert "beats v1 on the holdout" in latest["reason"]
    assert director.fleet_desired(cloud.db)[NAME].version == "2", "gateways seen later get version 2"
    assert _decisions(cloud, rollout.rollout_id) == [
        "started",
        "stage_started",
        "stage_passed",
        "stage_started",
        "stage_passed",
        "completed",
    ]


def test_a_rejection_in_the_canary_halts_and_rolls_the_canary_back_only(cloud: Cloud):
    before = {g: cloud.version_of(g) for g in GATEWAYS}
    rollout = _start(cloud)
    canary, rest = rollout.stages[0].gateway_ids, rollout.stages[1].gateway_ids
    cloud.commit(canary[0])
    cloud.reject(canary[1], rule="golden_vectors", detail="probabilities differ by 0.2")

    halted = cloud.rollouts.advance(rollout.rollout_id, actor="tests")

    assert halted.status is RolloutStatus.ROLLED_BACK
    assert [s.status for s in halted.stages] == [StageStatus.FAILED, StageStatus.PENDING]
    assert f"{canary[1]} rejected ([golden_vectors] probabilities differ by 0.2)" in halted.outcome
    trusted = _trusted(cloud)
    for gateway_id in canary:
        version, sequence = cloud.version_of(gateway_id)
        assert (version, sequence) == ("1", before[gateway_id][1] + 2), "a higher sequence naming the old version"
        retained = verify_director(retained_document(cloud.config, gateway_id).to_json(), trusted, gateway_id, None)
        assert (retained.signed.models[NAME].version, retained.signed.sequence) == ("1", sequence)
    assert all(cloud.version_of(g) == before[g] for g in rest), "the rest never got version 2"
    assert MLModelRegistry(cloud.db).get_active_model(NAME)["model_version"] == "1"
    decisions = store.decisions(cloud.db, rollout.rollout_id)
    assert [d["decision"] for d in decisions][-2:] == ["stage_failed", "rolled_back"]
    assert sorted(decisions[-1]["details"]["to"]["1"]) == sorted(canary)
    again = cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    assert again.status is RolloutStatus.ROLLED_BACK and _decisions(cloud, rollout.rollout_id) == [
        d["decision"] for d in decisions
    ], "a finished rollout is left alone"


def test_a_silent_canary_gateway_is_overdue_at_the_deadline_and_halts(cloud: Cloud):
    started = datetime.now(UTC)
    rollout = _start(cloud, now=started)
    canary = rollout.stages[0].gateway_ids
    cloud.commit(canary[0])  # canary[1] says nothing at all

    before_deadline = cloud.rollouts.advance(rollout.rollout_id, actor="tests", now=started + timedelta(minutes=29))
    assert before_deadline.status is RolloutStatus.RUNNING
    past = cloud.rollouts.advance(rollout.rollout_id, actor="tests", now=started + timedelta(minutes=31))

    assert past.status is RolloutStatus.ROLLED_BACK
    assert f"{canary[1]} overdue (still pending at the stage deadline)" in past.outcome
    assert all(cloud.version_of(g)[0] == "1" for g in canary)


def test_a_later_stage_tolerates_failures_up_to_its_threshold(cloud: Cloud):
    plan = RolloutPlan(percentages=(10, 100), max_failure_share=0.2)
    rollout = _start(cloud, plan)
    (canary,) = rollout.stages[0].gateway_ids
    cloud.commit(canary)
    cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    rest = rollout.stages[1].gateway_ids
    for gateway_id in rest[:-1]:
        cloud.commit(gateway_id)
    cloud.reject(rest[-1])  # 1 of 9: 11 % <= 20 %

    done = cloud.rollouts.advance(rollout.rollout_id, actor="tests")

    assert done.status is RolloutStatus.COMPLETED
    passed = [d for d in store.decisions(cloud.db, rollout.rollout_id) if d["decision"] == "stage_passed"][-1]
    assert "1 rejected" in passed["reason"] and "8 committed" in passed["reason"]


def test_operator_halt_resume_roll_back_and_one_live_rollout_per_model(cloud: Cloud):
    rollout = _start(cloud)
    with pytest.raises(RolloutRefused, match="already has a live rollout"):
        _start(cloud)
    for gateway_id in rollout.stages[0].gateway_ids:
        cloud.commit(gateway_id)

    halted = cloud.rollouts.halt(rollout.rollout_id, actor="ops-bob", reason="holiday freeze")
    assert cloud.rollouts.advance(rollout.rollout_id, actor="tests").stages[0].status is StageStatus.RUNNING
    with pytest.raises(RolloutRefused, match="only a running rollout can become halted"):
        cloud.rollouts.halt(rollout.rollout_id, actor="ops-bob", reason="again")
    assert halted.status is RolloutStatus.HALTED

    resumed = cloud.rollouts.resume(rollout.rollout_id, actor="ops-bob", reason="freeze over")
    assert resumed.stages[0].deadline_at > rollout.stages[0].deadline_at, "a halt stops the stage clock"
    assert cloud.rollouts.advance(rollout.rollout_id, actor="tests").stages[1].status is StageStatus.RUNNING

    rolled = cloud.rollouts.roll_back(rollout.rollout_id, actor="ops-bob", reason="support calls")
    assert rolled.status is RolloutStatus.ROLLED_BACK and rolled.outcome == "support calls"
    assert all(cloud.version_of(g)[0] == "1" for g in GATEWAYS)
    with pytest.raises(RolloutRefused, match="nothing to roll back"):
        cloud.rollouts.roll_back(rollout.rollout_id, actor="ops-bob", reason="again")
    assert _start(cloud).status is RolloutStatus.RUNNING, "a finished rollout frees the model for another"


def test_what_cannot_become_production_is_refused_before_any_gateway_is_directed(cloud: Cloud):
    with pytest.raises(RolloutRefused, match="already production"):
        cloud.rollouts.start(NAME, "1", actor="ops", reason="again", plan=PLAN)
    MLModelRegistry(cloud.db).record_evaluation(NAME, "2", passed=False, details={})
    with pytest.raises(RolloutRefused, match="failed evaluation"):
        _start(cloud)
    assert all(cloud.version_of(g)[0] == "1" for g in GATEWAYS)
    assert store.list_ids(cloud.db) == []


def test_automation_starts_a_canary_only_when_the_deployment_allows_it(cloud: Cloud, monkeypatch):
    def winner():
        return start_rollout(
            cloud.config, cloud.db, NAME, "2", actor="retraining", reason="won the A/B test", plan=PLAN, automatic=True
        )

    monkeypatch.delenv(AUTO_CANARY_ENV, raising=False)
    assert winner() is None and store.list_ids(cloud.db) == []
    monkeypatch.setenv(AUTO_CANARY_ENV, "maybe")
    with pytest.raises(ValueError, match="IOTSPHERE_ROLLOUT_AUTO_CANARY must be 1 or 0"):
        winner()
    monkeypatch.setenv(AUTO_CANARY_ENV, "1")
    started = winner()
    assert started is not None and started.created_by == "retraining"
    assert all(cloud.version_of(g)[0] == "2" for g in started.stages[0].gateway_ids)
