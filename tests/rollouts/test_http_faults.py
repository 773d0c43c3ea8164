"""A rollout whose canary cannot be directed as a whole answers 503 over real HTTP, with the cause, and leaves no
rollout behind; started again once the fault is gone, it directs its canary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud.api.roles import Role
from cloud.config import CloudConfig
from cloud.rollouts import store
from cloud.rollouts.plan import rollout_order
from cloud.storage import open_database
from tests.api.conftest import ServedCloud, auth, served_cloud
from tests.rollouts.conftest import GATEWAYS, NAME

pytestmark = pytest.mark.mqtt


@pytest.fixture
def api(released: CloudConfig) -> Iterator[ServedCloud]:
    with served_cloud(released) as served:
        yield served


def _sql(config: CloudConfig, statement: str) -> None:
    db = open_database(config.database_url)
    try:
        db.execute(statement)
    finally:
        db.close()


@pytest.mark.sqlite_only  # SQLite's RAISE(ROLLBACK) stands in for a database failing mid-transaction
def test_a_fault_while_directing_the_canary_answers_503_and_starts_nothing(api: ServedCloud):
    operator = auth(api.tokens[Role.OPERATOR])
    canary = rollout_order(GATEWAYS)[:2]
    _sql(
        api.config,
        "CREATE TRIGGER lose_transaction BEFORE UPDATE ON director_documents "
        f"WHEN NEW.gateway_id = '{canary[1]}' BEGIN SELECT RAISE(ROLLBACK, 'disk I/O error'); END",
    )
    body = {"model_name": NAME, "version": "2", "reason": "beats v1", "percentages": [20, 100]}

    refused = api.http.post("/api/rollouts", json=body, headers=operator)

    assert refused.status_code == 503, refused.text
    assert "nothing was issued" in refused.json()["detail"] and "disk I/O error" in refused.json()["detail"]
    db = open_database(api.config.database_url)
    try:
        assert store.list_ids(db, store.RolloutStatus.RUNNING) == [], "no rollout without its canary directed"
    finally:
        db.close()

    _sql(api.config, "DROP TRIGGER lose_transaction")
    created = api.http.post("/api/rollouts", json=body, headers=operator)
    assert created.status_code == 201, created.text
    assert created.json()["stages"][0]["status"] == "running"
