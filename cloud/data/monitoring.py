"""Monitoring: metric time series, each version's training reference, every drift check."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

from cloud.data.metadata import FLOAT, metadata

metric_points = Table(
    "metric_points",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("model_name", Text, nullable=False),
    Column("prediction_type", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("device_type", Text, nullable=False),
    Column("arm", Text, nullable=False),
    Column("window", Text, nullable=False),
    Column("metric", Text, nullable=False),
    Column("value", FLOAT),
    Column("at", Text, nullable=False),
    Column("source", Text),
    Column("recorded_at", Text),
    Index(
        "metric_points_series",
        "model_name",
        "metric",
        "model_version",
        "device_type",
        "arm",
        "window",
        "at",
        unique=True,
    ),
    Index("idx_metric_points_prediction_type_at", "prediction_type", "at"),
)


model_references = Table(
    "model_references",
    metadata,
    Column("model_name", Text, primary_key=True, nullable=True),
    Column("model_version", Text, primary_key=True, nullable=True),
    Column("reference_json", Text),
    Column("created_at", Text),
)


drift_checks = Table(
    "drift_checks",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("model_name", Text, nullable=False),
    Column("model_version", Text, nullable=False),
    Column("device_type", Text),
    Column("window_start", Text),
    Column("window_end", Text),
    Column("checked_at", Text, nullable=False),
    Column("checked_by", Text),
    Column("status", Text, nullable=False),
    Column("drifted_features", Integer),
    Column("quality_findings", Integer),
    Column("performance_status", Text),
    Column("result_json", Text, nullable=False),
    Index("idx_drift_checks_model_name_id", "model_name", "id"),
)
