"""Training runs (a queue with their logs) and the schedules that enqueue them."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

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
