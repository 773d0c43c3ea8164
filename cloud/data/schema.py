"""The whole schema: every owner's tables on one ``MetaData``, and which owner holds each table.

Importing this module imports every owner, so ``metadata`` is complete: Alembic compares it with a database
(tests/data/test_migrations.py) and the baseline revision was generated from it.
"""

from __future__ import annotations

from types import ModuleType

from sqlalchemy import Column, Connection, Integer, Table, Text, column, inspect, select
from sqlalchemy import table as table_clause

from cloud.data import (
    alerts,
    audit,
    dead_letters,
    director,
    experiments,
    features,
    fleet,
    ingest,
    keys,
    models,
    monitoring,
    predictions,
    retraining,
    rollouts,
    training,
)
from cloud.data.metadata import metadata

#: the legacy steps' record (``cloud.data.legacy``), frozen at step 21; Alembic's ``alembic_version`` follows it.
#: The baseline fills it, so a new file answers ``GET /api/health`` and the legacy check as an old one does.
schema_migrations = Table(
    "schema_migrations",
    metadata,
    Column("version", Integer, primary_key=True, nullable=True, autoincrement=False),
    Column("applied_at", Text),
)

OWNERS: tuple[ModuleType, ...] = (
    predictions,
    features,
    models,
    training,
    experiments,
    rollouts,
    director,
    fleet,
    audit,
    keys,
    ingest,
    dead_letters,
    monitoring,
    retraining,
    alerts,
)


def tables_by_owner() -> dict[str, list[str]]:
    """Each owner's short name and the names of the tables it holds, in definition order."""
    return {
        owner.__name__.rsplit(".", 1)[1]: [value.name for value in vars(owner).values() if isinstance(value, Table)]
        for owner in OWNERS
    }


def legacy_steps(connection: Connection) -> set[int]:
    """The legacy steps ``schema_migrations`` records as applied (what the health checks report)."""
    return set(connection.execute(select(schema_migrations.c.version)).scalars())


#: Alembic's own record (not in ``metadata``: Alembic makes and keeps it)
_alembic_version = table_clause("alembic_version", column("version_num"))


def revision(connection: Connection) -> str | None:
    """The Alembic revision the database is at (``cloud.data.migrations.HEAD`` once migrated); None if never."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(select(_alembic_version.c.version_num)).scalar()


__all__ = ["OWNERS", "legacy_steps", "metadata", "revision", "schema_migrations", "tables_by_owner"]
