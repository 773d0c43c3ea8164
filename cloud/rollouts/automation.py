"""``start_rollout``: how automated retraining or an A/B conclusion hands a winning version to a staged rollout.

Whether a winner goes to a canary on its own or waits for an operator is the deployment's choice:
``IOTSPHERE_ROLLOUT_AUTO_CANARY=1`` lets automation start rollouts; unset (the default), an automatic call
returns None and the winner waits for an operator (``iotsphere rollouts start`` or ``POST /api/rollouts``).
An operator's call (``automatic=False``) always starts one.

Usage from another service::

    record = start_rollout(config, db, "component_failure", "7", actor="retraining", reason="beat v6 on holdout",
                           automatic=True)
    if record is None: ...  # left for an operator; say so in your own decision record
"""

from __future__ import annotations

from datetime import datetime

import sqlite_utils

from cloud.config import CloudConfig, environment, key_passphrase
from cloud.rollouts.engine import StagedRollouts
from cloud.rollouts.plan import RolloutPlan
from cloud.rollouts.store import RolloutRecord

AUTO_CANARY_ENV = "IOTSPHERE_ROLLOUT_AUTO_CANARY"


def auto_canary_enabled() -> bool:
    """True when ``IOTSPHERE_ROLLOUT_AUTO_CANARY`` is 1/true/yes/on; ValueError for anything else but unset/off."""
    return environment().rollout_auto_canary


def start_rollout(
    config: CloudConfig,
    db: sqlite_utils.Database,
    model_name: str,
    version: str,
    device_type: str | None = None,
    *,
    actor: str | None = None,
    reason: str,
    plan: RolloutPlan | None = None,
    automatic: bool = False,
    passphrase: str | None = None,
    now: datetime | None = None,
) -> RolloutRecord | None:
    """Start a staged rollout and direct its canary; None if ``automatic`` and automation may not start one.

    Raises ``RolloutRefused`` (not released, failed evaluation, a live rollout already, no key passphrase…),
    ``UnknownModel`` and ``PlanError`` with messages fit for an operator.
    """
    if automatic and not auto_canary_enabled():
        return None
    rollouts = StagedRollouts(config, db, passphrase or key_passphrase())
    return rollouts.start(model_name, version, device_type, actor=actor, reason=reason, plan=plan, now=now)
