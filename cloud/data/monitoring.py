"""Monitoring: metric time series, each version's training reference, every drift check."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, RowMapping, Table, Text, delete, insert, select

from cloud.data.metadata import FLOAT, metadata, upsert

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


def delete_reference(connection: Connection, model_name: str, model_version: str) -> None:
    """Forget a version's training reference (its version was discarded, and its number will be used again)."""
    refs = model_references.c
    connection.execute(
        delete(model_references).where(refs.model_name == model_name, refs.model_version == model_version)
    )


# ---- metric points -------------------------------------------------------------------------------------------

#: a series' point: what ``metric_points_series`` makes unique
_SERIES = ("model_name", "metric", "model_version", "device_type", "arm", "window", "at")
#: what a read returns of each point
_POINT = ("model_name", "prediction_type", "model_version", "device_type", "arm", "window", "metric", "value", "at")


def put_metric_points(connection: Connection, points: Sequence[Mapping[str, Any]]) -> None:
    """Store each point (every column but ``id``); a point of the same series and time replaces its value, source
    and ``recorded_at``. One statement for all of them."""
    query = upsert(connection, metric_points)
    query = query.on_conflict_do_update(
        index_elements=[metric_points.c[name] for name in _SERIES],
        set_={name: query.excluded[name] for name in ("value", "source", "recorded_at")},
    )
    connection.execute(query, [dict(point) for point in points])


def find_metric_points(
    connection: Connection,
    equal: Mapping[str, str],
    start: str | None = None,
    end: str | None = None,
    limit: int = 10_000,
) -> list[RowMapping]:
    """Points whose columns equal ``equal`` (column → value), at in [start, end) where given, oldest first, at
    most ``limit``; each with its series, value, ``at`` and source."""
    query = select(*(metric_points.c[name] for name in (*_POINT, "source")))
    query = query.where(*(metric_points.c[name] == value for name, value in equal.items()))
    if start is not None:
        query = query.where(metric_points.c.at >= start)
    if end is not None:
        query = query.where(metric_points.c.at < end)
    query = query.order_by(metric_points.c.at, metric_points.c.id).limit(limit)
    return list(connection.execute(query).mappings())


# ---- training references -------------------------------------------------------------------------------------


def put_reference(
    connection: Connection, model_name: str, model_version: str, reference_json: str, created_at: str
) -> None:
    """Store a version's reference, replacing one stored before under the same version."""
    query = upsert(connection, model_references).values(
        model_name=model_name, model_version=model_version, reference_json=reference_json, created_at=created_at
    )
    query = query.on_conflict_do_update(
        index_elements=[model_references.c.model_name, model_references.c.model_version],
        set_={"reference_json": query.excluded.reference_json, "created_at": query.excluded.created_at},
    )
    connection.execute(query)


def reference_json(connection: Connection, model_name: str, model_version: str) -> str | None:
    """A version's reference as stored (JSON text); None if it has none."""
    query = select(model_references.c.reference_json).where(
        model_references.c.model_name == model_name, model_references.c.model_version == model_version
    )
    return connection.execute(query).scalar()


def newest_referenced_version(connection: Connection, model_name: str) -> str | None:
    """The highest version of the model that has a reference (numbers compared as numbers); None if none has.

    Sorted here rather than by a cast in SQL: PostgreSQL refuses to cast a version that is not a number, and a
    model has few versions."""
    query = select(model_references.c.model_version).where(model_references.c.model_name == model_name)
    found = list(connection.execute(query).scalars())
    return max(found, key=lambda version: (int(version) if version.isdigit() else 0, version), default=None)


# ---- drift checks --------------------------------------------------------------------------------------------


def add_drift_check(connection: Connection, row: Mapping[str, Any]) -> int:
    """Store a check's row; its id."""
    return int(connection.execute(insert(drift_checks).values(dict(row))).inserted_primary_key[0])


def drift_checks_of(connection: Connection, model_name: str, limit: int) -> list[RowMapping]:
    """The model's recorded checks, newest first, at most ``limit``."""
    query = select(drift_checks).where(drift_checks.c.model_name == model_name)
    return list(connection.execute(query.order_by(drift_checks.c.id.desc()).limit(limit)).mappings())


def drift_checks_before(connection: Connection, model_name: str, before: int | None, limit: int) -> list[RowMapping]:
    """One page of the model's recorded checks newest first: ids below ``before`` if given, at most ``limit``."""
    query = select(drift_checks).where(drift_checks.c.model_name == model_name)
    if before is not None:
        query = query.where(drift_checks.c.id < before)
    return list(connection.execute(query.order_by(drift_checks.c.id.desc()).limit(limit)).mappings())
