"""Automated retraining following an A/B test it started: a winner goes to a staged rollout, not everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cloud.retraining.service import RetrainingService
from cloud.storage import iso
from tests.experiments.conftest import NAME, Lab
from tests.releases.conftest import PASSPHRASE


def _started_by_retraining(lab: Lab) -> dict:
    """An experiment of version 2 and the open decision automated retraining keeps while it runs."""
    experiment = lab.service.create(NAME, "2", actor="retraining", mode="split", challenger_percent=50)
    lab.service.start(experiment["experiment_id"], actor="retraining")
    with lab.db.conn:
        lab.db["retraining_decisions"].insert(
            {
                "at": iso(datetime.now(UTC)),
                "model_name": NAME,
                "trigger": "follow_up",
                "decision": "experiment_started",
                "reason": "test",
                "evidence_json": json.dumps({}),
                "model_version": "2",
                "experiment_id": experiment["experiment_id"],
                "open": 1,
            }
        )
    return experiment


@pytest.mark.parametrize("automatic", [True, False])
def test_a_winning_challenger_goes_to_a_staged_rollout_when_automation_may_start_one(lab: Lab, monkeypatch, automatic):
    monkeypatch.setenv("IOTSPHERE_ROLLOUT_AUTO_CANARY", "1" if automatic else "0")
    experiment = _started_by_retraining(lab)
    service = RetrainingService(lab.db, lab.config, PASSPHRASE)
    assert service.follow_up(datetime.now(UTC)) == []  # no data yet: it keeps running

    lab.feed(experiment, devices=800, error_rate={"champion": 0.4, "challenger": 0.1})
    (decision,) = service.follow_up(datetime.now(UTC))

    concluded = lab.db["experiments"].get(experiment["experiment_id"])
    assert (concluded["status"], concluded["decision"]) == ("concluded", "challenger")
    assert lab.registry.get_active_model(NAME)["model_version"] == "1"  # not promoted everywhere at once
    if automatic:
        assert decision["decision"] == "rollout_started" and decision["rollout_id"]
        rollout = lab.db["rollouts"].get(decision["rollout_id"])
        assert (rollout["model_name"], rollout["version"]) == (NAME, "2")
    else:
        assert decision["decision"] == "waiting_for_operator" and "IOTSPHERE_ROLLOUT_AUTO_CANARY" in decision["reason"]
        assert list(lab.db["rollouts"].rows) == []
    assert service.follow_up(datetime.now(UTC)) == []  # closed once
