"""ExperimentService audits its own changes with the actor it is given (or the configured one), over the API with
the caller's key, never with the operator's reason, and a refused action records nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cloud.api.roles import Role
from cloud.audit import AuditLog
from cloud.config import CloudConfig
from cloud.experiments.service import NotEnoughData
from cloud.experiments.store import ExperimentConflict
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.experiments.conftest import NAME, Lab

pytestmark = pytest.mark.mqtt

REASON = "the regional manager asked, see ticket 8812"


def _experiment_entries(lab: Lab) -> list:
    return [entry for entry in AuditLog(lab.db).entries(limit=1000) if entry.action.startswith("experiments.")]


def test_each_change_called_directly_is_audited_with_its_actor_and_without_the_reason(lab: Lab):
    draft = lab.service.create(NAME, "2", actor="ops:alice", reason=REASON)
    experiment_id = draft["experiment_id"]
    lab.service.start(experiment_id, actor="ops:bob", reason=REASON)
    lab.service.stop(experiment_id, actor="ops:alice", reason=REASON)
    lab.service.conclude(experiment_id, actor="ops:carol", reason=REASON, force=True)

    entries = _experiment_entries(lab)
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("ops:alice", "experiments.create", experiment_id),
        ("ops:bob", "experiments.start", experiment_id),
        ("ops:alice", "experiments.stop", experiment_id),
        ("ops:carol", "experiments.conclude", experiment_id),
    ]
    assert entries[-1].details["decision"] == "inconclusive"
    assert REASON not in json.dumps([e.details for e in entries])


def test_without_an_actor_the_configured_one_is_recorded(lab: Lab, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IOTSPHERE_ACTOR", "robot:experiments")

    draft = lab.service.create(NAME, "2")

    [entry] = _experiment_entries(lab)
    assert (entry.actor, entry.target) == ("robot:experiments", draft["experiment_id"])
    assert draft["created_by"] == "robot:experiments"


def test_a_refused_action_records_nothing(lab: Lab):
    first = lab.service.create(NAME, "2", actor="ops:alice")
    lab.service.start(first["experiment_id"], actor="ops:alice")
    second = lab.service.create(NAME, "2", actor="ops:alice")
    recorded = len(_experiment_entries(lab))
    assert recorded == 3  # create, start, create

    with pytest.raises(ExperimentConflict, match="already running"):
        lab.service.start(second["experiment_id"], actor="ops:bob")
    with pytest.raises(NotEnoughData):
        lab.service.conclude(first["experiment_id"], actor="ops:bob")

    assert len(_experiment_entries(lab)) == recorded
    assert lab.service.store.get(second["experiment_id"])["status"] == "draft"


@pytest.fixture
def cloud(production: CloudConfig) -> Iterator[ServedCloud]:
    with served_cloud(production) as served:
        yield served


def test_an_api_call_is_audited_with_the_callers_key(cloud: ServedCloud, lab: Lab):
    token = cloud.tokens[Role.OPERATOR]
    body = {"model_name": NAME, "challenger_version": "2", "reason": REASON}

    created = cloud.http.post("/api/experiments", json=body, headers=auth(token))

    assert created.status_code == 201, created.text
    [entry] = _experiment_entries(lab)
    assert (entry.actor, entry.target) == (f"key:{token.split('_')[1]}", created.json()["experiment_id"])
    assert not [e for e in AuditLog(lab.db).entries(limit=1000) if e.action.startswith("http.")]
