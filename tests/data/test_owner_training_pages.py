"""The dashboard's keyset pages over the ``training`` and ``retraining`` owners, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import retraining, training
from tests.data.test_owner_retraining import _decision
from tests.data.test_owner_training import _run


def test_runs_come_in_pages_newest_first_by_request_time_then_id(owner_connection: Connection) -> None:
    for run_id, day in (("a", "1"), ("c", "2"), ("b", "2"), ("d", "3")):
        training.add_run(owner_connection, _run(run_id, day))
    training.add_run(owner_connection, _run("other", "4", model_name="n"))

    first = training.runs_before(owner_connection, "m", None, 2)
    assert [row["run_id"] for row in first] == ["d", "c"]
    cursor = (first[-1]["requested_at"], first[-1]["run_id"])
    assert [row["run_id"] for row in training.runs_before(owner_connection, "m", cursor, 2)] == ["b", "a"]
    assert [row["run_id"] for row in training.runs_before(owner_connection, None, None, 2)] == ["other", "d"]


def test_decisions_come_in_pages_below_an_id(owner_connection: Connection) -> None:
    ids = [retraining.add_decision(owner_connection, _decision("check", "no_trigger")) for _ in range(3)]
    other = retraining.add_decision(owner_connection, _decision("check", "queued", name="usage_pattern"))

    assert [row["id"] for row in retraining.decisions_before(owner_connection, None, None, 2)] == [other, ids[2]]
    assert [row["id"] for row in retraining.decisions_before(owner_connection, "component_failure", ids[2], 5)] == [
        ids[1],
        ids[0],
    ]
