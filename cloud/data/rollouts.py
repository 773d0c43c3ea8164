"""Staged rollouts: their stages, the gateways each stage directed, every decision."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

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
