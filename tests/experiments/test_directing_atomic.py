"""Starting or stopping an experiment changes its state and issues its director documents in one transaction: a
fault that fails directing as a whole (a SQLite trigger ending the transaction) leaves both as they were."""

from __future__ import annotations

import pytest

from cloud.releases import director
from tests.experiments.conftest import GATEWAYS, NAME, Lab

# SQLite's RAISE(ROLLBACK) in a trigger stands in for a database failing mid-transaction
pytestmark = [pytest.mark.mqtt, pytest.mark.sqlite_only]


def _documents(lab: Lab) -> dict:
    return {g: director.latest_document(lab.db, g).signed.sequence for g in GATEWAYS}


def _lose_transaction_on(lab: Lab, gateway_id: str) -> None:
    lab.db.execute(
        "CREATE TRIGGER lose_transaction BEFORE UPDATE ON director_documents "
        f"WHEN NEW.gateway_id = '{gateway_id}' BEGIN SELECT RAISE(ROLLBACK, 'disk I/O error'); END"
    )


def test_a_start_that_cannot_direct_leaves_the_draft_and_the_documents_as_they_were(lab: Lab):
    draft = lab.service.create(NAME, "2", actor="ops", mode="shadow")
    before = _documents(lab)
    _lose_transaction_on(lab, GATEWAYS[1])

    with pytest.raises(director.DirectingFailed, match="disk I/O error"):
        lab.service.start(draft["experiment_id"], actor="ops")

    assert lab.service.store.get(draft["experiment_id"])["status"] == "draft"
    assert _documents(lab) == before
    lab.db.execute("DROP TRIGGER lose_transaction")
    started = lab.service.start(draft["experiment_id"], actor="ops")
    assert started.experiment["status"] == "running" and len(started.directed.documents) == len(GATEWAYS)


def test_a_stop_that_cannot_direct_leaves_the_experiment_running(lab: Lab):
    experiment = lab.service.create(NAME, "2", actor="ops", mode="shadow")
    lab.service.start(experiment["experiment_id"], actor="ops")
    before = _documents(lab)
    _lose_transaction_on(lab, GATEWAYS[0])

    with pytest.raises(director.DirectingFailed, match="disk I/O error"):
        lab.service.stop(experiment["experiment_id"], actor="ops", reason="enough")

    assert lab.service.store.get(experiment["experiment_id"])["status"] == "running"
    assert _documents(lab) == before
