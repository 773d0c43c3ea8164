"""Automated retraining following an A/B test it started: a winner goes to a staged rollout, not everywhere."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cloud.experiments.service import ExperimentService
from cloud.retraining.service import RetrainingService
from cloud.storage import iso
from tests.experiments.conftest import NAME, Lab
from tests.releases.conftest import PASSPHRASE
from tests.rows import insert_row, rows_of


def _started_by_retraining(lab: Lab) -> dict:
    """An experiment of version 2 and the open decision automated retraining keeps while it runs."""
    experiment = lab.service.create(NAME, "2", actor="retraining", mode="split", challenger_percent=50)
    lab.service.start(experiment["experiment_id"], actor="retraining")
    insert_row(
        lab.db,
        "retraining_decisions",
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
        },
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

    concluded = rows_of(lab.db, "experiments", experiment_id=experiment["experiment_id"])[0]
    assert (concluded["status"], concluded["decision"]) == ("concluded", "challenger")
    assert lab.registry.get_active_model(NAME)["model_version"] == "1"  # not promoted everywhere at once
    if automatic:
        assert decision["decision"] == "rollout_started" and decision["rollout_id"]
        rollout = rows_of(lab.db, "rollouts", rollout_id=decision["rollout_id"])[0]
        assert (rollout["model_name"], rollout["version"]) == (NAME, "2")
    else:
        assert decision["decision"] == "waiting_for_operator" and "IOTSPHERE_ROLLOUT_AUTO_CANARY" in decision["reason"]
        assert rows_of(lab.db, "rollouts") == []
    assert service.follow_up(datetime.now(UTC)) == []  # closed once


def test_a_verdict_gone_by_the_time_it_is_acted_on_leaves_the_experiment_running(lab: Lab, monkeypatch):
    """Ingest writes between retraining's look and conclude's own: a latency breach near its limit can be gone.
    The CI demo crashed on the NotEnoughData this raised; now the next tick looks again."""
    experiment = _started_by_retraining(lab)
    service = RetrainingService(lab.db, lab.config, PASSPHRASE)
    real_status = ExperimentService.status
    looks: list[str] = []

    def breached_then_not(self, experiment_id):  # retraining's look saw a breach; conclude's, a moment later, none
        look = real_status(self, experiment_id)
        if not looks:
            look = {**look, "recommendation": "guardrail_breached"}
        looks.append(look["recommendation"])
        return look

    monkeypatch.setattr(ExperimentService, "status", breached_then_not)
    assert service.follow_up(datetime.now(UTC)) == []
    assert looks == ["guardrail_breached", "continue"]
    assert rows_of(lab.db, "experiments", experiment_id=experiment["experiment_id"])[0]["status"] == "running"
    assert [d["action"] for d in lab.service.store.decisions(experiment["experiment_id"])][-1] == "conclude_refused"
    monkeypatch.undo()

    lab.feed(experiment, devices=800, error_rate={"champion": 0.4, "challenger": 0.1})
    (decision,) = service.follow_up(datetime.now(UTC))  # the decision stayed open: it is acted on at the next look
    assert decision["decision"] in ("rollout_started", "waiting_for_operator")
    assert rows_of(lab.db, "experiments", experiment_id=experiment["experiment_id"])[0]["decision"] == "challenger"
