"""The ``retraining`` owner's queries on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import retraining

NAME = "component_failure"


def _decision(trigger: str, decision: str, *, name: str = NAME, open_: int = 0, **values) -> dict:
    return {
        "at": "2026-01-01T00:00:00.000000Z",
        "model_name": name,
        "trigger": trigger,
        "decision": decision,
        "reason": "r",
        "evidence_json": "{}",
        "open": open_,
        **values,
    }


def test_a_policy_is_stored_replaced_and_listed(owner_connection: Connection) -> None:
    assert retraining.policy_json(owner_connection, NAME) is None
    retraining.save_policy(owner_connection, NAME, '{"enabled": false}', "op", "2026-01-01T00:00:00.000000Z")
    retraining.save_policy(owner_connection, NAME, '{"enabled": true}', "admin", "2026-01-02T00:00:00.000000Z")
    retraining.save_policy(owner_connection, "usage_pattern", "{}", "op", "2026-01-01T00:00:00.000000Z")

    assert retraining.policy_json(owner_connection, NAME) == '{"enabled": true}'
    assert sorted(tuple(row) for row in retraining.every_policy(owner_connection)) == [
        (NAME, '{"enabled": true}'),
        ("usage_pattern", "{}"),
    ]


def test_decisions_are_listed_newest_first_and_the_last_of_each_kind_found(owner_connection: Connection) -> None:
    first = retraining.add_decision(owner_connection, _decision("check", "queued", at="2026-01-01T00:00:00.000000Z"))
    second = retraining.add_decision(owner_connection, _decision("check", "no_trigger"))
    third = retraining.add_decision(owner_connection, _decision("schedule", "skipped", name="usage_pattern"))

    assert [row["id"] for row in retraining.decisions(owner_connection)] == [third, second, first]
    assert [row["id"] for row in retraining.decisions(owner_connection, NAME, limit=1)] == [second]
    assert retraining.last_decision(owner_connection, NAME, "check")["decision"] == "no_trigger"
    assert retraining.last_decision(owner_connection, NAME, "schedule") is None
    assert retraining.last_queued_at(owner_connection, NAME) == "2026-01-01T00:00:00.000000Z"
    assert retraining.last_queued_at(owner_connection, "usage_pattern") is None


def test_open_decisions_wait_until_closed(owner_connection: Connection) -> None:
    run = retraining.add_decision(owner_connection, _decision("check", "queued", open_=1, run_id="run-1"))
    retraining.add_decision(owner_connection, _decision("check", "no_trigger"))
    ab = retraining.add_decision(owner_connection, _decision("follow_up", "experiment_started", open_=1, name="x"))

    assert [row["id"] for row in retraining.open_decisions(owner_connection)] == [run, ab]
    assert [row["run_id"] for row in retraining.open_decisions(owner_connection, NAME)] == ["run-1"]

    retraining.close_decision(owner_connection, run)
    assert [row["id"] for row in retraining.open_decisions(owner_connection)] == [ab]
