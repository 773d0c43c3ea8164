"""A/B tests of champion against challenger, and every decision about them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, RowMapping, Table, Text, insert, select, update

from cloud.data.fleet import before_cursor
from cloud.data.metadata import FLOAT, metadata, partial

experiments = Table(
    "experiments",
    metadata,
    Column("experiment_id", Text, primary_key=True, nullable=True),
    Column("model_name", Text, nullable=False),
    Column("prediction_type", Text),
    Column("champion_version", Text, nullable=False),
    Column("challenger_version", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("challenger_percent", Integer),
    Column("metric", Text, nullable=False),
    Column("min_detectable_effect", FLOAT),
    Column("alpha", FLOAT),
    Column("power", FLOAT),
    Column("planned_per_arm", Integer),
    Column("guardrails_json", Text),
    Column("gateway_ids_json", Text),
    Column("status", Text, nullable=False),
    Column("created_at", Text),
    Column("created_by", Text),
    Column("started_at", Text),
    Column("started_by", Text),
    Column("stopped_at", Text),
    Column("stopped_by", Text),
    Column("concluded_at", Text),
    Column("concluded_by", Text),
    Column("decision", Text),
    Column("reason", Text),
    Index("experiments_one_running", "model_name", unique=True, **partial("status = 'running'")),
    Index("idx_experiments_status_created_at", "status", "created_at"),
    Index("idx_experiments_created_at_id", "created_at", "experiment_id"),
)


experiment_decisions = Table(
    "experiment_decisions",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("experiment_id", Text),
    Column("at", Text),
    Column("actor", Text),
    Column("action", Text),
    Column("decision", Text),
    Column("reason", Text),
    Column("details_json", Text),
    Index("idx_experiment_decisions_experiment_id_id", "experiment_id", "id"),
)


def add_experiment(connection: Connection, row: Mapping[str, Any]) -> None:
    connection.execute(insert(experiments), dict(row))


def find_experiment(connection: Connection, experiment_id: str) -> RowMapping | None:
    query = select(experiments).where(experiments.c.experiment_id == experiment_id)
    return connection.execute(query).mappings().first()


def every_experiment(
    connection: Connection, status: str | None = None, model_name: str | None = None
) -> list[RowMapping]:
    """Experiments in that status and of that model if given, newest first."""
    query = select(experiments).order_by(experiments.c.created_at.desc())
    if status is not None:
        query = query.where(experiments.c.status == status)
    if model_name is not None:
        query = query.where(experiments.c.model_name == model_name)
    return list(connection.execute(query).mappings())


def experiments_before(connection: Connection, cursor: tuple[str, str] | None, limit: int) -> list[RowMapping]:
    """At most ``limit`` experiments newest first by (``created_at``, ``experiment_id``), those before ``cursor``
    (the last one shown) if given: one range of their index, however many there are."""
    e = experiments.c
    query = (
        select(experiments)
        .where(before_cursor(e.created_at, e.experiment_id, cursor))
        .order_by(e.created_at.desc(), e.experiment_id.desc())
        .limit(limit)
    )
    return list(connection.execute(query).mappings())


def update_experiment_if(
    connection: Connection, experiment_id: str, statuses: Iterable[str], changes: Mapping[str, Any]
) -> bool:
    """Apply ``changes`` if the experiment's status is one of ``statuses``; whether it did. IntegrityError when it
    would make a second running experiment of a model (``experiments_one_running``)."""
    query = (
        update(experiments)
        .where(experiments.c.experiment_id == experiment_id, experiments.c.status.in_(list(statuses)))
        .values(dict(changes))
    )
    return connection.execute(query).rowcount == 1


def add_decision(connection: Connection, row: Mapping[str, Any]) -> None:
    connection.execute(insert(experiment_decisions), dict(row))


def decisions(connection: Connection, experiment_id: str) -> list[RowMapping]:
    """The experiment's decisions, oldest first."""
    query = (
        select(experiment_decisions)
        .where(experiment_decisions.c.experiment_id == experiment_id)
        .order_by(experiment_decisions.c.id)
    )
    return list(connection.execute(query).mappings())
