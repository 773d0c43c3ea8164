"""Stage plans: the canary is chosen by a stable hash of gateway ids, stages only add gateways, bad plans fail."""

from __future__ import annotations

import hashlib
import random

import pytest

from cloud.rollouts.plan import PlanError, RolloutPlan, rollout_order, stages_for

GATEWAYS = [f"gw-{i:03d}" for i in range(40)]


def test_the_same_gateways_are_chosen_whatever_order_they_come_in():
    shuffled = GATEWAYS[:]
    random.Random(7).shuffle(shuffled)
    plan = RolloutPlan(percentages=(5, 25, 100))

    first, again = stages_for(plan, GATEWAYS), stages_for(plan, shuffled)

    assert [s.gateway_ids for s in first] == [s.gateway_ids for s in again]
    assert [len(s.gateway_ids) for s in first] == [2, 8, 30]
    assert first[0].gateway_ids == sorted(GATEWAYS, key=lambda g: hashlib.sha256(g.encode()).hexdigest())[:2]
    assert first[0].gateway_ids != GATEWAYS[:2], "not simply the first names"
    assert sorted(g for s in first for g in s.gateway_ids) == GATEWAYS


def test_a_gateway_keeps_its_place_when_others_join():
    order = rollout_order(GATEWAYS)
    grown = rollout_order([*GATEWAYS, "gw-new-1", "gw-new-2"])

    assert [g for g in grown if g in GATEWAYS] == order


def test_the_canary_has_at_least_one_gateway_and_empty_stages_are_dropped():
    stages = stages_for(RolloutPlan(percentages=(1, 30, 100)), ["gw-a", "gw-b"])

    assert [len(s.gateway_ids) for s in stages] == [1, 1]
    assert [s.percent for s in stages] == [1, 100]
    assert [s.max_failure_share for s in stages] == [0.0, 0.05], "the canary tolerates nothing by default"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"percentages": (50, 10, 100)}, "must rise strictly"),
        ({"percentages": (10, 10, 100)}, "must rise strictly"),
        ({"percentages": (10, 50)}, "must reach 100"),
        ({"percentages": (0, 100)}, "must rise strictly"),
        ({"max_failure_share": 1.0}, "max_failure_share must be in"),
        ({"canary_max_failure_share": -0.1}, "canary_max_failure_share must be in"),
    ],
)
def test_a_plan_that_cannot_be_followed_is_refused(kwargs: dict, message: str):
    with pytest.raises(PlanError, match=message):
        RolloutPlan(**kwargs)


def test_no_gateway_in_scope_is_refused():
    with pytest.raises(PlanError, match="no gateways in scope"):
        stages_for(RolloutPlan(), [])
