"""Automated retraining: a policy per model and every trigger, decision and reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, Row, RowMapping, Table, Text, insert, select, update

from cloud.data.metadata import metadata, upsert

retraining_policies = Table(
    "retraining_policies",
    metadata,
    Column("model_name", Text, primary_key=True, nullable=True),
    Column("policy_json", Text),
    Column("updated_by", Text),
    Column("updated_at", Text),
)


retraining_decisions = Table(
    "retraining_decisions",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("at", Text),
    Column("model_name", Text),
    Column("trigger", Text),
    Column("decision", Text),
    Column("reason", Text),
    Column("evidence_json", Text),
    Column("run_id", Text),
    Column("model_version", Text),
    Column("experiment_id", Text),
    Column("rollout_id", Integer),
    Column("open", Integer),
    Index("idx_retraining_decisions_model_name_trigger_id", "model_name", "trigger", "id"),
    Index("idx_retraining_decisions_open", "open"),
)


# -- policies --------------------------------------------------------------------------------------------------------


def policy_json(connection: Connection, model_name: str) -> str | None:
    """The model's policy as stored (JSON text); None when it has none."""
    query = select(retraining_policies.c.policy_json).where(retraining_policies.c.model_name == model_name)
    return connection.execute(query).scalar()


def every_policy(connection: Connection) -> list[Row]:
    """(model_name, policy_json) of every model with a policy."""
    return connection.execute(select(retraining_policies.c.model_name, retraining_policies.c.policy_json)).all()


def save_policy(connection: Connection, model_name: str, policy_json: str, updated_by: str, updated_at: str) -> None:
    """Store the model's policy, replacing the one it had."""
    values = {"policy_json": policy_json, "updated_by": updated_by, "updated_at": updated_at}
    query = upsert(connection, retraining_policies).values(model_name=model_name, **values)
    connection.execute(query.on_conflict_do_update(index_elements=[retraining_policies.c.model_name], set_=values))


# -- decisions -------------------------------------------------------------------------------------------------------


def add_decision(connection: Connection, row: Mapping[str, Any]) -> int:
    """Store a decision; its id."""
    return connection.execute(insert(retraining_decisions), dict(row)).inserted_primary_key[0]


def decisions(connection: Connection, model_name: str | None = None, limit: int = 100) -> list[RowMapping]:
    """Decisions newest first, of one model or of all, at most ``limit``."""
    query = select(retraining_decisions).order_by(retraining_decisions.c.id.desc()).limit(limit)
    if model_name is not None:
        query = query.where(retraining_decisions.c.model_name == model_name)
    return list(connection.execute(query).mappings())


def last_decision(connection: Connection, model_name: str, trigger: str) -> RowMapping | None:
    """The model's newest decision of ``trigger``."""
    query = (
        select(retraining_decisions)
        .where(retraining_decisions.c.model_name == model_name, retraining_decisions.c.trigger == trigger)
        .order_by(retraining_decisions.c.id.desc())
        .limit(1)
    )
    return connection.execute(query).mappings().first()


def last_queued_at(connection: Connection, model_name: str) -> str | None:
    """When the model's newest retraining was queued; None if none was."""
    query = (
        select(retraining_decisions.c.at)
        .where(retraining_decisions.c.model_name == model_name, retraining_decisions.c.decision == "queued")
        .order_by(retraining_decisions.c.id.desc())
        .limit(1)
    )
    return connection.execute(query).scalar()


def open_decisions(connection: Connection, model_name: str | None = None) -> list[RowMapping]:
    """Decisions still waiting on a run or an experiment, oldest first; only the model's when given."""
    query = select(retraining_decisions).where(retraining_decisions.c.open == 1).order_by(retraining_decisions.c.id)
    if model_name is not None:
        query = query.where(retraining_decisions.c.model_name == model_name)
    return list(connection.execute(query).mappings())


def close_decision(connection: Connection, decision_id: int) -> None:
    """The decision waits no longer: ``follow_up`` acted on it."""
    connection.execute(update(retraining_decisions).where(retraining_decisions.c.id == decision_id).values(open=0))


def decisions_before(
    connection: Connection, model_name: str | None, before: int | None, limit: int
) -> list[RowMapping]:
    """One page of decisions (of ``model_name`` if given) newest first: ids below ``before`` if given, at most
    ``limit``."""
    query = select(retraining_decisions).order_by(retraining_decisions.c.id.desc()).limit(limit)
    if model_name is not None:
        query = query.where(retraining_decisions.c.model_name == model_name)
    if before is not None:
        query = query.where(retraining_decisions.c.id < before)
    return list(connection.execute(query).mappings())
