"""A rollout's plan: how many stages, what share of the gateways each reaches, how much failure it tolerates.

Gateways are ordered by a stable hash of their id, so the canary of a model is the same gateways every time
(re-runs, restarts, other processes) and stages only ever add gateways: stage *k* covers the first
``ceil(percent_k × n / 100)`` gateways of that order, at least one. A stage that would add no gateway
(a small fleet) is dropped.

Defaults, and why: a canary tolerates no failure (``0.0``: one rejected, rolled-back or overdue canary gateway
halts the rollout, because the canary exists to catch exactly that), later stages tolerate 5 % (a large fleet
always has a few gateways that are offline or out of disk; the canary has already shown the release works).
Each stage has its own deadline (default: the deployment deadline, ``IOTSPHERE_DEPLOYMENT_DEADLINE_S`` or
30 minutes) counted from the moment the stage directed its gateways, so a silent gateway is overdue, a
failure, once it passes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import timedelta

from cloud.deployments import resolve_deadline
from cloud.errors import Refused

DEFAULT_PERCENTAGES = (10.0, 100.0)
DEFAULT_CANARY_FAILURE_SHARE = 0.0
DEFAULT_FAILURE_SHARE = 0.05


class PlanError(Refused, ValueError):
    """A plan that cannot be followed (percentages not rising to 100, a share outside [0, 1), …)."""


@dataclass(frozen=True)
class RolloutPlan:
    """Cumulative percentages of the gateways in scope, ending at 100; failure shares a stage may exceed."""

    percentages: tuple[float, ...] = DEFAULT_PERCENTAGES
    canary_max_failure_share: float = DEFAULT_CANARY_FAILURE_SHARE
    max_failure_share: float = DEFAULT_FAILURE_SHARE
    stage_deadline: timedelta = field(default_factory=resolve_deadline)

    def __post_init__(self) -> None:
        steps = self.percentages
        if not steps or any(not 0 < p <= 100 for p in steps) or list(steps) != sorted(set(steps)):
            raise PlanError(f"stage percentages must rise strictly within (0, 100], not {list(steps)}")
        if steps[-1] != 100:
            raise PlanError(f"the last stage must reach 100 % of the gateways, not {steps[-1]} %")
        for name in ("canary_max_failure_share", "max_failure_share"):
            if not 0 <= getattr(self, name) < 1:
                raise PlanError(f"{name} must be in [0, 1), not {getattr(self, name)}")
        if self.stage_deadline <= timedelta(0):
            raise PlanError("the stage deadline must be positive")

    def failure_share(self, stage_index: int) -> float:
        return self.canary_max_failure_share if stage_index == 0 else self.max_failure_share

    def to_json(self) -> dict:
        return {
            "percentages": list(self.percentages),
            "canary_max_failure_share": self.canary_max_failure_share,
            "max_failure_share": self.max_failure_share,
            "stage_deadline_s": self.stage_deadline.total_seconds(),
        }


def rollout_order(gateway_ids: list[str]) -> list[str]:
    """Gateways by SHA-256 of their id: stable everywhere, unrelated to names or the order they were seen."""
    return sorted(set(gateway_ids), key=lambda gateway_id: hashlib.sha256(gateway_id.encode()).hexdigest())


@dataclass(frozen=True)
class Stage:
    index: int
    percent: float
    max_failure_share: float
    gateway_ids: list[str]


def stages_for(plan: RolloutPlan, gateway_ids: list[str]) -> list[Stage]:
    """Split the gateways into the plan's stages; the first stage (the canary) has at least one gateway."""
    ordered = rollout_order(gateway_ids)
    if not ordered:
        raise PlanError("no gateways in scope to roll out to")
    stages: list[Stage] = []
    covered = 0
    for percent in plan.percentages:
        reach = max(1, math.ceil(percent * len(ordered) / 100))
        if reach > covered:
            index = len(stages)
            stages.append(Stage(index, percent, plan.failure_share(index), ordered[covered:reach]))
            covered = reach
    return stages
