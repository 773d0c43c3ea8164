"""A canary gateway the director cannot direct (its sequence at the bound) is shown with the reason and left out of
the stage's verdict: the others are directed, judged and carry the rollout on; a stage none of whose gateways
could be directed fails at its deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cloud.rollouts import store
from cloud.rollouts.plan import rollout_order
from cloud.rollouts.store import RolloutStatus, StageStatus
from cloud.rollouts.verdict import NOT_DIRECTED
from shared.limits import MAX_SAFE_INT
from tests.rollouts.conftest import GATEWAYS, NAME, PLAN, Cloud
from tests.rows import update_rows

pytestmark = pytest.mark.mqtt


def _exhaust(cloud: Cloud, gateway_ids: list[str]) -> None:
    for gateway_id in gateway_ids:
        update_rows(cloud.db, "gateways", {"gateway_id": gateway_id}, {"director_sequence": MAX_SAFE_INT})


def test_the_canary_goes_on_without_the_gateway_it_could_not_direct(cloud: Cloud):
    stuck, other = rollout_order(GATEWAYS)[:2]  # the canary: 20 % of ten gateways
    _exhaust(cloud, [stuck])

    rollout = cloud.rollouts.start(NAME, "2", actor="ops", reason="beats v1", plan=PLAN)

    started = store.decisions(cloud.db, rollout.rollout_id)[-1]
    assert "directed 1 of 2 gateway(s)" in started["reason"] and "1 could not be directed" in started["reason"]
    assert str(MAX_SAFE_INT) in started["details"]["not_directed"][stuck]
    cloud.commit(other)
    advanced = cloud.rollouts.advance(rollout.rollout_id, actor="tests")
    assert [s.status for s in advanced.stages] == [StageStatus.PASSED, StageStatus.RUNNING]
    passed = next(d for d in store.decisions(cloud.db, rollout.rollout_id) if d["decision"] == "stage_passed")
    assert "1 not_directed" in passed["reason"] and "of 1 gateway(s) directed" in passed["reason"]


def test_a_stage_none_of_whose_gateways_could_be_directed_fails_at_its_deadline(cloud: Cloud):
    _exhaust(cloud, rollout_order(GATEWAYS)[:2])
    now = datetime.now(UTC)
    rollout = cloud.rollouts.start(NAME, "2", actor="ops", reason="beats v1", plan=PLAN, now=now)

    waiting = cloud.rollouts.advance(rollout.rollout_id, actor="tests", now=now + timedelta(minutes=1))
    assert waiting.status is RolloutStatus.RUNNING
    verdict = cloud.rollouts.progress(waiting, now + timedelta(minutes=1))
    assert {g.state for g in verdict.gateways} == {NOT_DIRECTED}
    failed = cloud.rollouts.advance(rollout.rollout_id, actor="tests", now=now + PLAN.stage_deadline * 2)
    assert failed.status is RolloutStatus.ROLLED_BACK
