"""Claiming queued training runs on PostgreSQL: a claimer passes over the run another is taking (SKIP LOCKED)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine, text

from cloud.data import training
from cloud.data.metadata import metadata

pytestmark = pytest.mark.postgres

RUNNING = {"status": "running", "worker": "test"}


def _queue(engine: Engine, count: int) -> None:
    metadata.create_all(engine, tables=[training.training_runs])
    with engine.begin() as connection:
        for n in range(count):
            row = {
                "run_id": f"run-{n}",
                "model_name": "anomaly",
                "status": "queued",
                "requested_at": f"2026-01-0{n + 1}",
            }
            training.add_run(connection, row)


def test_a_second_claimer_takes_the_next_run_while_the_first_claim_is_uncommitted(
    postgres_schema: Callable[[], Engine],
) -> None:
    engine = postgres_schema()
    _queue(engine, 3)
    with engine.connect() as first, engine.connect() as second:
        first.begin()
        assert training.claim_run(first, "queued", RUNNING) == "run-0"
        second.begin()
        # without SKIP LOCKED the second claim would wait on run-0's row lock (and fail here), then find it taken
        second.execute(text("SET LOCAL lock_timeout = '2s'"))
        assert training.claim_run(second, "queued", RUNNING) == "run-1"
        assert training.claim_run(second, "queued", RUNNING, run_id="run-0") is None  # being claimed: not waited for
        second.commit()
        first.commit()
    with engine.connect() as connection:
        statuses = {row["run_id"]: row["status"] for row in training.runs(connection)}
    assert statuses == {"run-0": "running", "run-1": "running", "run-2": "queued"}


def test_a_run_claimed_and_committed_is_not_claimed_again(postgres_schema: Callable[[], Engine]) -> None:
    engine = postgres_schema()
    _queue(engine, 1)
    with engine.begin() as connection:
        assert training.claim_run(connection, "queued", RUNNING) == "run-0"
    with engine.begin() as connection:
        assert training.claim_run(connection, "queued", RUNNING) is None
        assert training.claim_run(connection, "queued", RUNNING, run_id="run-0") is None
