"""Predictions from the gateways, what actually happened (outcomes) and users' ratings (feedback)."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, Table, Text

from cloud.data.metadata import FLOAT, metadata

predictions = Table(
    "predictions",
    metadata,
    Column("prediction_id", Text, primary_key=True, nullable=True),
    Column("arm", Text, primary_key=True, nullable=True),
    Column("device_id", Text),
    Column("device_type", Text),
    Column("prediction_type", Text),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("outputs_json", Text),
    Column("latency_ms", FLOAT),
    Column("made_at", Text),
    Column("feature_window_end", Text),
    Column("gateway_id", Text),
    Column("msg_id", Text),
    Index("idx_predictions_device_id_prediction_type_made_at", "device_id", "prediction_type", "made_at"),
)


outcomes = Table(
    "outcomes",
    metadata,
    Column("outcome_id", Text, primary_key=True, nullable=True),
    Column("device_id", Text),
    Column("source", Text),
    Column("observed_at", Text),
    Column("prediction_id", Text),
    Column("component", Text),
    Column("result", Text),
    Column("value", FLOAT),
    Column("technician", Text),
    Column("notes", Text),
    Column("gateway_id", Text),
    Column("received_at", Text),
    Index("idx_outcomes_device_id_observed_at", "device_id", "observed_at"),
    Index("idx_outcomes_prediction_id", "prediction_id"),
    Index("idx_outcomes_received_at", "received_at"),
)


feedback = Table(
    "feedback",
    metadata,
    Column("feedback_id", Text, primary_key=True, nullable=True),
    Column("prediction_id", Text),
    Column("rating", Integer),
    Column("comments", Text),
    Column("submitted_by", Text),
    Column("submitted_at", Text),
    Index("idx_feedback_prediction_id_submitted_at", "prediction_id", "submitted_at"),
    Index("idx_feedback_submitted_at", "submitted_at"),
)
