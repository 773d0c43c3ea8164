"""Training runs (a queue with their logs) and the schedules that enqueue them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, RowMapping, Table, Text, delete, insert, select, update

from cloud.data.metadata import FLOAT, metadata

training_runs = Table(
    "training_runs",
    metadata,
    Column("run_id", Text, primary_key=True, nullable=True),
    Column("model_name", Text),
    Column("status", Text),
    Column("requested_by", Text),
    Column("requested_at", Text),
    Column("schedule_id", Integer),
    Column("start_date", Text),
    Column("end_date", Text),
    Column("options_json", Text),
    Column("started_at", Text),
    Column("worker", Text),
    Column("finished_at", Text),
    Column("stage", Text),
    Column("progress", FLOAT),
    Column("dataset_id", Text),
    Column("model_version", Text),
    Column("result_json", Text),
    Column("error", Text),
    Index("idx_training_runs_status_requested_at", "status", "requested_at"),
    Index("idx_training_runs_model_name_requested_at", "model_name", "requested_at"),
)


training_run_logs = Table(
    "training_run_logs",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("run_id", Text),
    Column("at", Text),
    Column("message", Text),
    Index("idx_training_run_logs_run_id_id", "run_id", "id"),
)


training_schedules = Table(
    "training_schedules",
    metadata,
    Column("schedule_id", Integer, primary_key=True, nullable=True),
    Column("model_name", Text),
    Column("schedule", Text),
    Column("cron", Text),
    Column("window_days", Integer),
    Column("options_json", Text),
    Column("created_by", Text),
    Column("created_at", Text),
    Column("next_run_at", Text),
    Column("last_run_at", Text),
    Column("last_run_id", Text),
    Column("enabled", Integer),
)


def add_run(connection: Connection, row: Mapping[str, Any]) -> None:
    """Queue a run: its row as the caller built it (id, model, window, options, status)."""
    connection.execute(insert(training_runs), dict(row))


def find_run(connection: Connection, run_id: str) -> RowMapping | None:
    return connection.execute(select(training_runs).where(training_runs.c.run_id == run_id)).mappings().first()


def runs(
    connection: Connection, model_name: str | None = None, status: str | None = None, limit: int = 50
) -> list[RowMapping]:
    """Runs of that model and status if given, newest first (the run id breaks a tie of request times)."""
    query = select(training_runs).order_by(training_runs.c.requested_at.desc(), training_runs.c.run_id.desc())
    if model_name:
        query = query.where(training_runs.c.model_name == model_name)
    if status:
        query = query.where(training_runs.c.status == status)
    return list(connection.execute(query.limit(limit)).mappings())


def runs_with_status(connection: Connection, status: str) -> list[RowMapping]:
    """The ``run_id`` and ``worker`` of every run in ``status``."""
    query = select(training_runs.c.run_id, training_runs.c.worker).where(training_runs.c.status == status)
    return list(connection.execute(query).mappings())


def claim_run(connection: Connection, queued: str, changes: Mapping[str, Any], run_id: str | None = None) -> str | None:
    """Apply ``changes`` to ``run_id``, or to the oldest run whose status is ``queued``, if it is still ``queued``;
    the id of the run this call claimed, None if there was none or another claimer was first.

    The claim is the one conditional UPDATE of ``update_run_if``, checked by its row count: on both dialects two
    claimers never take the same run. On SQLite the caller's write transaction (``BEGIN IMMEDIATE``) already holds
    the only write lock while it looks for the oldest run. On PostgreSQL many workers claim at once: the oldest run
    is locked with ``FOR UPDATE SKIP LOCKED`` (run in the caller's transaction), so a claimer passes over the run
    another is taking and claims the next rather than waiting for it and then finding it gone."""
    if connection.dialect.name == "postgresql":
        free = select(training_runs.c.run_id).where(training_runs.c.status == queued)
        if run_id is None:
            free = free.order_by(training_runs.c.requested_at, training_runs.c.run_id).limit(1)
        else:
            free = free.where(training_runs.c.run_id == run_id)
        run_id = connection.execute(free.with_for_update(skip_locked=True)).scalar()
        if run_id is None:
            return None
    elif run_id is None:
        oldest = (
            select(training_runs.c.run_id)
            .where(training_runs.c.status == queued)
            .order_by(training_runs.c.requested_at, training_runs.c.run_id)
            .limit(1)
        )
        run_id = connection.execute(oldest).scalar()
        if run_id is None:
            return None
    return run_id if update_run_if(connection, run_id, queued, changes) else None


def update_run_if(connection: Connection, run_id: str, status: str, changes: Mapping[str, Any]) -> bool:
    """Apply ``changes`` to the run if its status is still ``status``; whether it did."""
    query = (
        update(training_runs)
        .where(training_runs.c.run_id == run_id, training_runs.c.status == status)
        .values(dict(changes))
    )
    return connection.execute(query).rowcount == 1


def update_run(connection: Connection, run_id: str, changes: Mapping[str, Any]) -> None:
    """Apply ``changes`` (progress, its end) to the run, whatever its status."""
    connection.execute(update(training_runs).where(training_runs.c.run_id == run_id).values(dict(changes)))


def add_run_log(connection: Connection, run_id: str, at: str, message: str) -> None:
    connection.execute(insert(training_run_logs).values(run_id=run_id, at=at, message=message))


def run_logs(connection: Connection, run_id: str, after_id: int = 0) -> list[RowMapping]:
    """The run's log lines (``id``, ``at``, ``message``) after ``after_id``, oldest first."""
    logs = training_run_logs.c
    query = select(logs.id, logs.at, logs.message).where(logs.run_id == run_id, logs.id > after_id).order_by(logs.id)
    return list(connection.execute(query).mappings())


def add_schedule(connection: Connection, row: Mapping[str, Any]) -> int:
    """Store a schedule; its new id."""
    return connection.execute(insert(training_schedules), dict(row)).inserted_primary_key[0]


def find_schedule(connection: Connection, schedule_id: int) -> RowMapping | None:
    query = select(training_schedules).where(training_schedules.c.schedule_id == schedule_id)
    return connection.execute(query).mappings().first()


def schedules(connection: Connection, model_name: str | None = None) -> list[RowMapping]:
    """Schedules (of that model if given) in the order they were made."""
    query = select(training_schedules).order_by(training_schedules.c.schedule_id)
    if model_name:
        query = query.where(training_schedules.c.model_name == model_name)
    return list(connection.execute(query).mappings())


def remove_schedule(connection: Connection, schedule_id: int) -> None:
    connection.execute(delete(training_schedules).where(training_schedules.c.schedule_id == schedule_id))


def due_schedules(connection: Connection, at: str) -> list[RowMapping]:
    """Enabled schedules whose next fire time is ``at`` or earlier, the longest due first."""
    query = (
        select(training_schedules)
        .where(training_schedules.c.enabled == 1, training_schedules.c.next_run_at <= at)
        .order_by(training_schedules.c.next_run_at)
    )
    return list(connection.execute(query).mappings())


def advance_schedule(connection: Connection, schedule_id: int, fired_at: str, next_run_at: str) -> bool:
    """Move a schedule that was due at ``fired_at`` on to ``next_run_at``; False if another worker moved it first."""
    query = (
        update(training_schedules)
        .where(training_schedules.c.schedule_id == schedule_id, training_schedules.c.next_run_at == fired_at)
        .values(next_run_at=next_run_at, last_run_at=fired_at)
    )
    return connection.execute(query).rowcount == 1


def record_schedule_run(connection: Connection, schedule_id: int, run_id: str) -> None:
    """Note the run a schedule's last firing queued."""
    query = update(training_schedules).where(training_schedules.c.schedule_id == schedule_id)
    connection.execute(query.values(last_run_id=run_id))


def runs_before(
    connection: Connection, model_name: str | None, cursor: tuple[str, str] | None, limit: int
) -> list[RowMapping]:
    """One page of runs (of ``model_name`` if given) newest first: those before ``cursor`` (``requested_at``,
    ``run_id``) in that order, at most ``limit``."""
    c = training_runs.c
    query = select(training_runs).order_by(c.requested_at.desc(), c.run_id.desc())
    if model_name:
        query = query.where(c.model_name == model_name)
    if cursor is not None:
        at, run_id = cursor
        query = query.where((c.requested_at < at) | ((c.requested_at == at) & (c.run_id < run_id)))
    return list(connection.execute(query.limit(limit)).mappings())
