"""The ``experiments`` owner's queries on SQLite and PostgreSQL: experiments, their status moves and decisions."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from cloud.data import experiments


def _experiment(experiment_id: str, created_at: str, *, model_name: str = "m", status: str = "draft") -> dict:
    return {
        "experiment_id": experiment_id,
        "model_name": model_name,
        "champion_version": "1",
        "challenger_version": "2",
        "mode": "split",
        "challenger_percent": 10,
        "metric": "accuracy",
        "guardrails_json": "{}",
        "status": status,
        "created_at": f"2026-01-0{created_at}T00:00:00.000000Z",
        "created_by": "cli:alice",
    }


def test_experiments_are_found_and_listed_newest_first(owner_connection: Connection) -> None:
    experiments.add_experiment(owner_connection, _experiment("e1", "1"))
    experiments.add_experiment(owner_connection, _experiment("e2", "2", model_name="other", status="running"))
    experiments.add_experiment(owner_connection, _experiment("e3", "3"))

    assert experiments.find_experiment(owner_connection, "e2")["model_name"] == "other"
    assert experiments.find_experiment(owner_connection, "nosuch") is None
    listed = experiments.every_experiment
    assert [row["experiment_id"] for row in listed(owner_connection)] == ["e3", "e2", "e1"]
    assert [row["experiment_id"] for row in listed(owner_connection, status="draft")] == ["e3", "e1"]
    assert [row["experiment_id"] for row in listed(owner_connection, model_name="other")] == ["e2"]
    assert [row["experiment_id"] for row in listed(owner_connection, "running", "m")] == []


def test_experiments_are_paged_newest_first_by_creation_then_id(owner_connection: Connection) -> None:
    for experiment_id, created_at in (("e1", "1"), ("e2", "2"), ("e4", "2"), ("e3", "3"), ("e5", "2")):
        experiments.add_experiment(owner_connection, _experiment(experiment_id, created_at))
    seen, cursor = [], None
    while page := experiments.experiments_before(owner_connection, cursor, 2):
        seen.append([row["experiment_id"] for row in page])
        cursor = (page[-1]["created_at"], page[-1]["experiment_id"])
    assert seen == [["e3", "e5"], ["e4", "e2"], ["e1"]]  # three created at the same instant: by id, none lost


def test_a_status_moves_only_from_the_statuses_asked(owner_connection: Connection) -> None:
    experiments.add_experiment(owner_connection, _experiment("e1", "1"))
    running = {"status": "running", "started_at": "2026-01-02T00:00:00.000000Z", "started_by": "cli:bob"}

    assert experiments.update_experiment_if(owner_connection, "e1", ["running", "stopped"], running) is False
    assert experiments.update_experiment_if(owner_connection, "e1", ["draft"], running) is True
    row = experiments.find_experiment(owner_connection, "e1")
    assert (row["status"], row["started_by"]) == ("running", "cli:bob")


def test_a_model_has_one_running_experiment(owner_connection: Connection) -> None:
    experiments.add_experiment(owner_connection, _experiment("e1", "1", status="running"))
    experiments.add_experiment(owner_connection, _experiment("e2", "2"))

    with pytest.raises(IntegrityError), owner_connection.begin_nested():
        experiments.update_experiment_if(owner_connection, "e2", ["draft"], {"status": "running"})
    assert experiments.find_experiment(owner_connection, "e2")["status"] == "draft"


def test_decisions_are_kept_in_order_per_experiment(owner_connection: Connection) -> None:
    for experiment_id, action in (("e1", "create"), ("e2", "create"), ("e1", "start")):
        experiments.add_decision(
            owner_connection,
            {
                "experiment_id": experiment_id,
                "at": "2026-01-01T00:00:00.000000Z",
                "actor": "cli:alice",
                "action": action,
                "decision": None,
                "reason": "why",
                "details_json": "{}",
            },
        )

    assert [row["action"] for row in experiments.decisions(owner_connection, "e1")] == ["create", "start"]
    assert experiments.decisions(owner_connection, "e3") == []
