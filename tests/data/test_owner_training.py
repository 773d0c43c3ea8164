"""The ``training`` owner's queries on SQLite and PostgreSQL: the run queue, its logs and the schedules."""

from __future__ import annotations

from sqlalchemy import Connection

from cloud.data import training

RUNNING = {"status": "running", "started_at": "2026-01-05T00:00:00.000000Z", "worker": "host:1", "stage": "starting"}


def _run(run_id: str, requested_at: str, *, model_name: str = "m", status: str = "queued") -> dict:
    return {
        "run_id": run_id,
        "model_name": model_name,
        "status": status,
        "requested_by": "cli:alice",
        "requested_at": f"2026-01-0{requested_at}T00:00:00.000000Z",
        "start_date": "2025-10-01T00:00:00.000000Z",
        "end_date": "2026-01-01T00:00:00.000000Z",
        "options_json": "{}",
        "progress": 0.0,
    }


def _schedule(model_name: str, next_run_at: str, *, enabled: int = 1) -> dict:
    return {
        "model_name": model_name,
        "schedule": "daily",
        "cron": "@daily",
        "window_days": 90,
        "options_json": "{}",
        "created_by": "cli:alice",
        "created_at": "2026-01-01T00:00:00.000000Z",
        "next_run_at": next_run_at,
        "enabled": enabled,
    }


def test_runs_are_found_and_listed_newest_first_by_model_and_status(owner_connection: Connection) -> None:
    training.add_run(owner_connection, _run("r1", "1"))
    training.add_run(owner_connection, _run("r2", "2", model_name="other"))
    training.add_run(owner_connection, _run("r3", "3", status="failed"))

    assert training.find_run(owner_connection, "r2")["model_name"] == "other"
    assert training.find_run(owner_connection, "nosuch") is None
    assert [row["run_id"] for row in training.runs(owner_connection)] == ["r3", "r2", "r1"]
    assert [row["run_id"] for row in training.runs(owner_connection, limit=2)] == ["r3", "r2"]
    assert [row["run_id"] for row in training.runs(owner_connection, model_name="m")] == ["r3", "r1"]
    assert [row["run_id"] for row in training.runs(owner_connection, "m", "queued")] == ["r1"]


def test_the_oldest_queued_run_is_claimed_once(owner_connection: Connection) -> None:
    training.add_run(owner_connection, _run("newer", "3"))
    training.add_run(owner_connection, _run("older", "2"))
    training.add_run(owner_connection, _run("done", "1", status="succeeded"))

    assert training.claim_run(owner_connection, "queued", RUNNING) == "older"
    assert training.claim_run(owner_connection, "queued", RUNNING, "older") is None  # already running
    assert training.claim_run(owner_connection, "queued", RUNNING) == "newer"
    assert training.claim_run(owner_connection, "queued", RUNNING) is None
    claimed = training.find_run(owner_connection, "older")
    assert (claimed["status"], claimed["worker"], claimed["stage"]) == ("running", "host:1", "starting")
    running = sorted(training.runs_with_status(owner_connection, "running"), key=lambda row: row["run_id"])
    assert [dict(row) for row in running] == [
        {"run_id": "newer", "worker": "host:1"},
        {"run_id": "older", "worker": "host:1"},
    ]


def test_a_run_changes_only_from_the_status_asked_and_keeps_its_log(owner_connection: Connection) -> None:
    training.add_run(owner_connection, _run("r1", "1"))

    assert training.update_run_if(owner_connection, "r1", "running", {"status": "cancelled"}) is False
    assert training.update_run_if(owner_connection, "r1", "queued", {"status": "cancelled"}) is True
    training.update_run(owner_connection, "r1", {"stage": "done", "progress": 1.0})
    row = training.find_run(owner_connection, "r1")
    assert (row["status"], row["stage"], row["progress"]) == ("cancelled", "done", 1.0)

    for n in range(3):
        training.add_run_log(owner_connection, "r1", f"2026-01-01T00:00:0{n}.000000Z", f"line {n}")
    training.add_run_log(owner_connection, "r2", "2026-01-01T00:00:00.000000Z", "another run")
    lines = training.run_logs(owner_connection, "r1")
    assert [line["message"] for line in lines] == ["line 0", "line 1", "line 2"]
    assert set(lines[0]) == {"id", "at", "message"}
    assert [line["message"] for line in training.run_logs(owner_connection, "r1", lines[0]["id"])] == [
        "line 1",
        "line 2",
    ]


def test_schedules_are_stored_listed_and_removed(owner_connection: Connection) -> None:
    first = training.add_schedule(owner_connection, _schedule("m", "2026-01-02T00:00:00.000000Z"))
    second = training.add_schedule(owner_connection, _schedule("other", "2026-01-03T00:00:00.000000Z"))

    assert second > first
    assert training.find_schedule(owner_connection, first)["model_name"] == "m"
    assert [row["schedule_id"] for row in training.schedules(owner_connection)] == [first, second]
    assert [row["schedule_id"] for row in training.schedules(owner_connection, "other")] == [second]
    training.remove_schedule(owner_connection, first)
    assert training.find_schedule(owner_connection, first) is None


def test_a_due_schedule_moves_on_once_and_records_its_run(owner_connection: Connection) -> None:
    late = training.add_schedule(owner_connection, _schedule("m", "2026-01-01T00:00:00.000000Z"))
    due = training.add_schedule(owner_connection, _schedule("m", "2026-01-02T00:00:00.000000Z"))
    training.add_schedule(owner_connection, _schedule("m", "2026-01-01T00:00:00.000000Z", enabled=0))
    training.add_schedule(owner_connection, _schedule("m", "2026-01-09T00:00:00.000000Z"))

    now = "2026-01-02T00:00:00.000000Z"
    assert [row["schedule_id"] for row in training.due_schedules(owner_connection, now)] == [late, due]
    assert training.advance_schedule(owner_connection, due, now, "2026-01-03T00:00:00.000000Z") is True
    assert training.advance_schedule(owner_connection, due, now, "2026-01-03T00:00:00.000000Z") is False
    training.record_schedule_run(owner_connection, due, "r9")
    row = training.find_schedule(owner_connection, due)
    assert (row["next_run_at"], row["last_run_at"], row["last_run_id"]) == ("2026-01-03T00:00:00.000000Z", now, "r9")
    assert [row["schedule_id"] for row in training.due_schedules(owner_connection, now)] == [late]
