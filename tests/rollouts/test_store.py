"""Rollouts as stored give back what was stored: each stage's gateways in rollout order, not the table's."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from cloud.rollouts import store
from cloud.rollouts.plan import rollout_order
from cloud.storage import open_database
from tests.postgres_run import database_at

NOW = datetime(2026, 1, 31, 6, tzinfo=UTC)


def test_each_stage_lists_its_gateways_in_rollout_order(tmp_path: Path) -> None:
    db = open_database(database_at(tmp_path / "cloud.db"))
    ordered = rollout_order([f"gw-{n:03d}" for n in range(6)])
    assert ordered != sorted(ordered)  # so an order by id would show
    stages = [(10.0, 0.0, ordered[:2]), (100.0, 0.1, ordered[2:])]

    rollout_id = store.create(db, "m", "2", "", {"stage_deadline_s": 60.0}, stages, "cli:alice", "why", NOW)

    record = store.load(db, rollout_id)
    assert [stage.gateway_ids for stage in record.stages] == [ordered[:2], ordered[2:]]
    assert [row["gateway_id"] for row in store.gateway_rows(db, rollout_id)] == ordered
    db.close()
