"""The model registry: versions, their promotion history and evaluations."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, Table, Text, cast, text

from cloud.data.metadata import FLOAT, metadata, partial

models = Table(
    "models",
    metadata,
    Column("model_name", Text, primary_key=True, nullable=True),
    Column("model_version", Text, primary_key=True, nullable=True),
    Column("prediction_type", Text),
    Column("status", Text),
    Column("created_at", Text),
    Column("feature_set_version", Text),
    Column("device_types_json", Text),
    Column("metrics_json", Text),
    Column("lineage_json", Text),
    Column("release_target", Text),
    Column("model_target", Text),
    Column("model_sha256", Text),
    Column("production_device_type", Text),
    Column("evaluation_passed", Integer),
    Column("evaluation_json", Text),
    Column("targets_version", Integer),
    Index(
        "models_one_production", "model_name", "production_device_type", unique=True, **partial("status = 'production'")
    ),
)

#: ``MLModelRegistry.next_version``: the highest numeric version from this index, not a scan of every version
Index(
    "models_numeric_version",
    models.c.model_name,
    cast(models.c.model_version, Integer().with_variant(BigInteger(), "postgresql")),
    sqlite_where=text("model_version != '' AND model_version NOT GLOB '*[^0-9]*'"),
    postgresql_where=text("model_version ~ '^[0-9]{1,18}$'"),
)


model_history = Table(
    "model_history",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("at", Text),
    Column("actor", Text),
    Column("model_name", Text),
    Column("device_type", Text),
    Column("from_version", Text),
    Column("to_version", Text),
    Column("action", Text),
    Column("reason", Text),
    Column("override", Integer),
    Index("idx_model_history_model_name_device_type_id", "model_name", "device_type", "id"),
)


model_evaluations = Table(
    "model_evaluations",
    metadata,
    Column("id", Integer, primary_key=True, nullable=True),
    Column("model_name", Text),
    Column("model_version", Text),
    Column("dataset_id", Text),
    Column("score_name", Text),
    Column("score", FLOAT),
    Column("rows", Integer),
    Column("metrics_json", Text),
    Column("evaluated_at", Text),
    Column("evaluated_by", Text),
    Index("idx_model_evaluations_model_name_model_version_id", "model_name", "model_version", "id"),
)
