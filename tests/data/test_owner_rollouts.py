"""The ``rollouts`` owner's queries on SQLite and PostgreSQL: rollouts, their stages, gateways and decisions."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from cloud.data import rollouts

AT = "2026-01-01T00:00:00.000000Z"


def _rollout(model_name: str = "m", *, device_type: str = "", status: str = "running") -> dict:
    return {
        "model_name": model_name,
        "version": "2",
        "device_type": device_type,
        "status": status,
        "plan_json": "{}",
        "created_by": "cli:alice",
        "created_at": AT,
        "reason": "why",
        "updated_at": AT,
    }


def _stored(connection: Connection, gateways: dict[int, list[str]]) -> int:
    rollout_id = rollouts.add_rollout(connection, _rollout())
    rollouts.add_stages(
        connection,
        [
            {
                "rollout_id": rollout_id,
                "stage_index": index,
                "percent": 10.0 * (index + 1),
                "max_failure_share": 0.1,
                "deadline_s": 3600.0,
                "status": "pending",
            }
            for index in gateways
        ],
    )
    rollouts.add_gateways(
        connection,
        [{"rollout_id": rollout_id, "gateway_id": g, "stage_index": i} for i, ids in gateways.items() for g in ids],
    )
    return rollout_id


def test_a_rollout_is_stored_with_its_stages_and_gateways(owner_connection: Connection) -> None:
    rollout_id = _stored(owner_connection, {0: ["gw-b"], 1: ["gw-c", "gw-a"]})

    assert rollouts.find_rollout(owner_connection, rollout_id)["status"] == "running"
    assert rollouts.find_rollout(owner_connection, rollout_id + 1) is None
    assert [(s["stage_index"], s["percent"]) for s in rollouts.stages(owner_connection, rollout_id)] == [
        (0, 10.0),
        (1, 20.0),
    ]
    assert [(g["stage_index"], g["gateway_id"]) for g in rollouts.gateways(owner_connection, rollout_id)] == [
        (0, "gw-b"),
        (1, "gw-a"),
        (1, "gw-c"),
    ]
    rollouts.add_stages(owner_connection, [])
    rollouts.add_gateways(owner_connection, [])
    assert len(rollouts.gateways(owner_connection, rollout_id)) == 3


def test_a_model_and_scope_have_one_live_rollout(owner_connection: Connection) -> None:
    rollouts.add_rollout(owner_connection, _rollout())
    rollouts.add_rollout(owner_connection, _rollout(device_type="wh-2"))
    rollouts.add_rollout(owner_connection, _rollout(status="completed"))

    with pytest.raises(IntegrityError), owner_connection.begin_nested():
        rollouts.add_rollout(owner_connection, _rollout(status="halted"))


def test_rollout_ids_are_newest_first_by_status_and_model(owner_connection: Connection) -> None:
    first = rollouts.add_rollout(owner_connection, _rollout(status="completed"))
    second = rollouts.add_rollout(owner_connection, _rollout())
    third = rollouts.add_rollout(owner_connection, _rollout("other"))

    assert rollouts.rollout_ids(owner_connection) == [third, second, first]
    assert rollouts.rollout_ids(owner_connection, "running") == [third, second]
    assert rollouts.rollout_ids(owner_connection, "running", "m") == [second]
    assert rollouts.rollout_ids(owner_connection, model_name="m") == [second, first]


def test_status_and_stage_moves_happen_once(owner_connection: Connection) -> None:
    rollout_id = _stored(owner_connection, {0: ["gw-a"]})
    halted = {"status": "halted", "updated_at": AT, "outcome": "looked bad"}

    assert rollouts.update_rollout_if(owner_connection, rollout_id, ["running"], halted) is True
    assert rollouts.update_rollout_if(owner_connection, rollout_id, ["running"], halted) is False
    assert rollouts.find_rollout(owner_connection, rollout_id)["outcome"] == "looked bad"

    started = {"status": "running", "started_at": AT, "deadline_at": AT}
    assert rollouts.update_stage(owner_connection, rollout_id, 0, started, "pending") is True
    assert rollouts.update_stage(owner_connection, rollout_id, 0, started, "pending") is False
    assert rollouts.update_stage(owner_connection, rollout_id, 0, {"deadline_at": "2026-02-01"}) is True
    stage = rollouts.stages(owner_connection, rollout_id)[0]
    assert (stage["status"], stage["started_at"], stage["deadline_at"]) == ("running", AT, "2026-02-01")


def test_gateways_record_what_directed_them(owner_connection: Connection) -> None:
    rollout_id = _stored(owner_connection, {0: ["gw-a", "gw-b"]})

    rollouts.update_gateway(owner_connection, rollout_id, "gw-b", {"previous_version": "1", "directed_sequence": 7})

    rows = {g["gateway_id"]: g for g in rollouts.gateways(owner_connection, rollout_id)}
    assert (rows["gw-b"]["previous_version"], rows["gw-b"]["directed_sequence"]) == ("1", 7)
    assert rows["gw-a"]["directed_sequence"] is None


def test_decisions_are_kept_in_order(owner_connection: Connection) -> None:
    rollout_id = rollouts.add_rollout(owner_connection, _rollout())
    row = {"rollout_id": rollout_id, "stage_index": None, "at": AT, "actor": "a", "reason": "r", "details_json": "{}"}

    ids = [rollouts.add_decision(owner_connection, {**row, "decision": d}) for d in ("started", "halted")]

    assert ids[1] > ids[0]
    assert [d["decision"] for d in rollouts.decisions(owner_connection, rollout_id)] == ["started", "halted"]
    assert rollouts.decisions(owner_connection, rollout_id + 1) == []
