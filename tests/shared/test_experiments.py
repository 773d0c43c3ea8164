"""The split-test arm assignment both sides use: pinned values, the requested share, stability under changes."""

from __future__ import annotations

import pytest

from shared.experiments import arm_for, bucket_for
from shared.messages import Arm

DEVICES = [f"wh-{i:05d}" for i in range(10_000)]


@pytest.mark.parametrize(
    ("device_id", "experiment_id", "bucket"),
    [("wh-0001", "exp-1", 77), ("wh-0002", "exp-1", 71), ("wh-0001", "exp-2", 42), ("heater-42", "cf-3-vs-2", 34)],
)
def test_buckets_are_pinned_so_edge_and_cloud_never_drift(device_id: str, experiment_id: str, bucket: int):
    """Written out, not recomputed: a change to the hash would move heaters between arms mid-experiment."""
    assert bucket_for(device_id, experiment_id) == bucket


def test_the_same_heater_always_gets_the_same_arm():
    first = [arm_for(device, "exp-stable", 30) for device in DEVICES[:500]]
    again = [arm_for(device, "exp-stable", 30) for device in DEVICES[:500]]

    assert first == again


@pytest.mark.parametrize("percent", [5, 10, 30, 50, 90])
def test_the_challenger_share_is_near_the_requested_percent(percent: int):
    on_challenger = sum(arm_for(device, "exp-share", percent) == Arm.CHALLENGER for device in DEVICES)

    # binomial standard deviation at n = 10,000 is at most 0.5 points; 2 points is four of them
    assert abs(100 * on_challenger / len(DEVICES) - percent) < 2


def test_raising_the_share_only_moves_heaters_onto_the_challenger():
    at_10 = {device for device in DEVICES if arm_for(device, "exp-grow", 10) == Arm.CHALLENGER}
    at_20 = {device for device in DEVICES if arm_for(device, "exp-grow", 20) == Arm.CHALLENGER}

    assert at_10 < at_20


def test_a_new_experiment_reshuffles_heaters_and_the_extremes_hold():
    first = {device for device in DEVICES if arm_for(device, "exp-a", 50) == Arm.CHALLENGER}
    second = {device for device in DEVICES if arm_for(device, "exp-b", 50) == Arm.CHALLENGER}

    assert 0.4 < len(first & second) / len(first) < 0.6  # independent halves overlap by about half
    assert all(arm_for(device, "exp-a", 0) == Arm.CHAMPION for device in DEVICES[:200])
    assert all(arm_for(device, "exp-a", 100) == Arm.CHALLENGER for device in DEVICES[:200])


def test_a_share_outside_0_to_100_is_refused():
    with pytest.raises(ValueError, match="within 0..100"):
        arm_for("wh-1", "exp-1", 101)
