"""Staged rollouts: their stages, the gateways each stage directed, every decision."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, RowMapping, Table, Text, insert, select, update

from cloud.data.metadata import FLOAT, metadata, partial

rollouts = Table(
    "rollouts",
    metadata,
    Column("rollout_id", Integer, primary_key=True, nullable=True),
    Column("model_name", Text),
    Column("version", Text),
    Column("device_type", Text),
    Column("status", Text),
    Column("plan_json", Text),
    Column("created_by", Text),
    Column("created_at", Text),
    Column("reason", Text),
    Column("updated_at", Text),
    Column("finished_at", Text),
    Column("outcome", Text),
    Index("rollouts_one_live", "model_name", "device_type", unique=True, **partial("status IN ('running', 'halted')")),
    Index("idx_rollouts_status_rollout_id", "status", "rollout_id"),
)


rollout_stages = Table(
    "rollout_stages",
    metadata,
    Column("rollout_id", Integer, primary_key=True, nullable=True),
    Column("stage_index", Integer, primary_key=True, nullable=True),
    Column("percent", FLOAT),
    Column("max_failure_share", FLOAT),
    Column("deadline_s", FLOAT),
    Column("status", Text),
    Column("started_at", Text),
    Column("deadline_at", Text),
    Column("finished_at", Text),
)


rollout_gateways = Table(
    "rollout_gateways",
    metadata,
    Column("rollout_id", Integer, primary_key=True, nullable=True),
    Column("gateway_id", Text, primary_key=True, nullable=True),
    Column("stage_index", Integer),
    Column("previous_version", Text),
    Column("directed_sequence", Integer),
    Column("rollback_sequence", Integer),
)


rollout_decisions = Table(
    "rollout_decisions",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("rollout_id", Integer),
    Column("stage_index", Integer),
    Column("at", Text),
    Column("actor", Text),
    Column("decision", Text),
    Column("reason", Text),
    Column("details_json", Text),
    Index("idx_rollout_decisions_rollout_id_id", "rollout_id", "id"),
)


def add_rollout(connection: Connection, row: Mapping[str, Any]) -> int:
    """Store a rollout; its new id. IntegrityError if its model and scope already have a live one
    (``rollouts_one_live``)."""
    return connection.execute(insert(rollouts), dict(row)).inserted_primary_key[0]


def add_stages(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    if rows:
        connection.execute(insert(rollout_stages), [dict(row) for row in rows])


def add_gateways(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Each stage's gateways (``rollout_id``, ``gateway_id``, ``stage_index``)."""
    if rows:
        connection.execute(insert(rollout_gateways), [dict(row) for row in rows])


def find_rollout(connection: Connection, rollout_id: int) -> RowMapping | None:
    return connection.execute(select(rollouts).where(rollouts.c.rollout_id == rollout_id)).mappings().first()


def rollout_ids(connection: Connection, status: str | None = None, model_name: str | None = None) -> list[int]:
    """Rollout ids (in that status, of that model, if given), newest first."""
    query = select(rollouts.c.rollout_id).order_by(rollouts.c.rollout_id.desc())
    if status:
        query = query.where(rollouts.c.status == status)
    if model_name:
        query = query.where(rollouts.c.model_name == model_name)
    return list(connection.execute(query).scalars())


def stages(connection: Connection, rollout_id: int) -> list[RowMapping]:
    """The rollout's stages in order."""
    query = select(rollout_stages).where(rollout_stages.c.rollout_id == rollout_id)
    return list(connection.execute(query.order_by(rollout_stages.c.stage_index)).mappings())


def gateways(connection: Connection, rollout_id: int) -> list[RowMapping]:
    """The rollout's gateways by stage, then by id (the rollout's own order is the service's: the table keeps none
    that both dialects share)."""
    query = (
        select(rollout_gateways)
        .where(rollout_gateways.c.rollout_id == rollout_id)
        .order_by(rollout_gateways.c.stage_index, rollout_gateways.c.gateway_id)
    )
    return list(connection.execute(query).mappings())


def update_rollout_if(
    connection: Connection, rollout_id: int, statuses: Iterable[str], changes: Mapping[str, Any]
) -> bool:
    """Apply ``changes`` if the rollout's status is one of ``statuses``; False if another caller moved it first."""
    query = (
        update(rollouts)
        .where(rollouts.c.rollout_id == rollout_id, rollouts.c.status.in_(list(statuses)))
        .values(dict(changes))
    )
    return connection.execute(query).rowcount == 1


def update_stage(
    connection: Connection, rollout_id: int, index: int, changes: Mapping[str, Any], status: str | None = None
) -> bool:
    """Apply ``changes`` to a stage (only if its status is ``status``, when given); whether it did."""
    query = update(rollout_stages).where(
        rollout_stages.c.rollout_id == rollout_id, rollout_stages.c.stage_index == index
    )
    if status is not None:
        query = query.where(rollout_stages.c.status == status)
    return connection.execute(query.values(dict(changes))).rowcount == 1


def update_gateway(connection: Connection, rollout_id: int, gateway_id: str, changes: Mapping[str, Any]) -> None:
    """Note what a gateway ran before, or the document that directed or rolled it back."""
    query = update(rollout_gateways).where(
        rollout_gateways.c.rollout_id == rollout_id, rollout_gateways.c.gateway_id == gateway_id
    )
    connection.execute(query.values(dict(changes)))


def add_decision(connection: Connection, row: Mapping[str, Any]) -> int:
    """Keep a decision; its id (decisions are read back in id order)."""
    return connection.execute(insert(rollout_decisions), dict(row)).inserted_primary_key[0]


def decisions(connection: Connection, rollout_id: int) -> list[RowMapping]:
    query = select(rollout_decisions).where(rollout_decisions.c.rollout_id == rollout_id)
    return list(connection.execute(query.order_by(rollout_decisions.c.id)).mappings())


def rollout_ids_page(connection: Connection, before: int | None, limit: int) -> list[int]:
    """Up to ``limit`` rollout ids below ``before`` (from the newest when None), newest first: one page of a list."""
    query = select(rollouts.c.rollout_id).order_by(rollouts.c.rollout_id.desc()).limit(limit)
    if before is not None:
        query = query.where(rollouts.c.rollout_id < before)
    return list(connection.execute(query).scalars())
