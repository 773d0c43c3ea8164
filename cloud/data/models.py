"""The model registry: versions, their promotion history and evaluations."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    RowMapping,
    Table,
    Text,
    cast,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

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

#: a version's number where it is all digits (BIGINT on PostgreSQL, whose index takes up to 18 digits)
numeric_version = cast(models.c.model_version, Integer().with_variant(BigInteger(), "postgresql"))

#: ``highest_numeric_version``: the highest numeric version from this index, not a scan of every version
numeric_version_index = Index(
    "models_numeric_version",
    models.c.model_name,
    numeric_version,
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


# -- queries ---------------------------------------------------------------------------------------------------------

#: the status of the one version per model and scope that gateways run (``models_one_production``)
_PRODUCTION = "production"


def highest_numeric_version(connection: Connection, model_name: str) -> int | None:
    """The model's highest all-digit version, read from ``models_numeric_version``: the query repeats the index's
    condition, as each dialect writes it, so both planners use the index."""
    condition = numeric_version_index.dialect_options[connection.dialect.name]["where"]
    query = select(func.max(numeric_version)).where(models.c.model_name == model_name, condition)
    return connection.execute(query).scalar()


def find_version(connection: Connection, model_name: str, model_version: str) -> RowMapping | None:
    query = select(models).where(models.c.model_name == model_name, models.c.model_version == model_version)
    return connection.execute(query).mappings().first()


def versions(connection: Connection, model_name: str | None = None) -> list[RowMapping]:
    """Versions oldest first, of one model or of every model (by name)."""
    query = select(models).order_by(models.c.model_name, models.c.created_at, models.c.model_version)
    if model_name is not None:
        query = query.where(models.c.model_name == model_name)
    return list(connection.execute(query).mappings())


def has_model(connection: Connection, model_name: str) -> bool:
    """Whether any version of the model is registered."""
    query = select(models.c.model_version).where(models.c.model_name == model_name).limit(1)
    return connection.execute(query).first() is not None


def metrics_json(connection: Connection, model_name: str, model_version: str) -> str | None:
    """A version's metrics as stored (JSON text), None for an unknown version."""
    query = select(models.c.metrics_json).where(
        models.c.model_name == model_name, models.c.model_version == model_version
    )
    return connection.execute(query).scalar()


def add_version(connection: Connection, row: Mapping[str, Any]) -> None:
    connection.execute(insert(models), dict(row))


def update_version(connection: Connection, model_name: str, model_version: str, values: Mapping[str, Any]) -> None:
    """Set columns of one version (its evaluation, its signed release)."""
    query = update(models).where(models.c.model_name == model_name, models.c.model_version == model_version)
    connection.execute(query.values(dict(values)))


def discard_candidate(connection: Connection, model_name: str, model_version: str) -> bool:
    """Delete a version that is still a candidate, with its evaluations; whether there was one."""
    query = delete(models).where(
        models.c.model_name == model_name, models.c.model_version == model_version, models.c.status == "candidate"
    )
    if connection.execute(query).rowcount == 0:
        return False
    scores = model_evaluations.c
    connection.execute(
        delete(model_evaluations).where(scores.model_name == model_name, scores.model_version == model_version)
    )
    return True


def production_in(connection: Connection, model_name: str, scopes: list[str]) -> RowMapping | None:
    """The production version of the first scope (by ``production_device_type``, descending) of ``scopes`` that has
    one: a device type sorts after the general scope ``''``, so it wins over it."""
    query = (
        select(models)
        .where(
            models.c.model_name == model_name,
            models.c.status == _PRODUCTION,
            models.c.production_device_type.in_(scopes),
        )
        .order_by(models.c.production_device_type.desc())
        .limit(1)
    )
    return connection.execute(query).mappings().first()


def production_versions(connection: Connection, model_name: str) -> list[RowMapping]:
    """Every scope's production version of the model, the general scope (``''``) first."""
    query = (
        select(models)
        .where(models.c.model_name == model_name, models.c.status == _PRODUCTION)
        .order_by(models.c.production_device_type)
    )
    return list(connection.execute(query).mappings())


def switch_production(
    connection: Connection, model_name: str, version: str, scope: str, current: str | None, demoted_status: str
) -> None:
    """Make ``version`` the production version of ``scope``, ``current`` (the scope's one now, if any) becoming
    ``demoted_status``. ``models_one_production`` refuses a second production version in the scope with an
    ``IntegrityError``."""
    key = models.c.model_name == model_name
    if current is not None:
        demote = update(models).where(key, models.c.model_version == current)
        connection.execute(demote.values(status=demoted_status, production_device_type=None))
    promote = update(models).where(key, models.c.model_version == version)
    connection.execute(promote.values(status=_PRODUCTION, production_device_type=scope))


def add_history(connection: Connection, entry: Mapping[str, Any]) -> int:
    """Store a promotion or rollback; its id."""
    return connection.execute(insert(model_history), dict(entry)).inserted_primary_key[0]


def history(connection: Connection, model_name: str, device_type: str | None = None) -> list[RowMapping]:
    """Promotions and rollbacks of a model, newest first; only one scope's when ``device_type`` is given."""
    query = select(model_history).where(model_history.c.model_name == model_name).order_by(model_history.c.id.desc())
    if device_type is not None:
        query = query.where(model_history.c.device_type == device_type)
    return list(connection.execute(query).mappings())


def version_before(connection: Connection, model_name: str, scope: str, version: str) -> str | None:
    """The production version ``version`` last replaced in ``scope``, None when it replaced none."""
    entries = model_history.c
    query = (
        select(entries.from_version)
        .where(
            entries.model_name == model_name,
            entries.device_type == scope,
            entries.to_version == version,
            entries.from_version.is_not(None),
        )
        .order_by(entries.id.desc())
        .limit(1)
    )
    return connection.execute(query).scalar()


def add_evaluation(connection: Connection, row: Mapping[str, Any]) -> int:
    """Store a version's score on a dataset; its id."""
    return connection.execute(insert(model_evaluations), dict(row)).inserted_primary_key[0]


def evaluations(connection: Connection, model_name: str, model_version: str | None = None) -> list[RowMapping]:
    """A model's evaluations (of one version when given), newest first."""
    query = (
        select(model_evaluations)
        .where(model_evaluations.c.model_name == model_name)
        .order_by(model_evaluations.c.id.desc())
    )
    if model_version is not None:
        query = query.where(model_evaluations.c.model_version == model_version)
    return list(connection.execute(query).mappings())


def prediction_type_of(connection: Connection, model_name: str) -> str | None:
    """The prediction type of the model's registered versions; None if none is registered."""
    query = select(models.c.prediction_type).where(models.c.model_name == model_name).limit(1)
    return connection.execute(query).scalar()
