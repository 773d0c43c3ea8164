"""A/B tests of champion against challenger, and every decision about them."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

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
