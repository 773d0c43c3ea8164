"""Automated retraining: a policy per model and every trigger, decision and reason."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

from cloud.data.metadata import metadata

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
