"""The Alembic baseline on the real PostgreSQL: it builds every table and column the owners declare (and the SQLite
file has), its triggers do on PostgreSQL what they do on SQLite, and a second upgrade changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from cloud.data.legacy import MIGRATIONS
from cloud.data.migrate import upgrade
from cloud.data.migrations import HEAD
from cloud.data.schema import metadata
from cloud.storage import open_database
from tests.data.schema_dump import BOOKKEEPING

pytestmark = pytest.mark.postgres


def _upgraded(make_engine: Callable[[], Engine]) -> Engine:
    engine = make_engine()
    with engine.begin() as connection:
        upgrade(connection)
    return engine


def _partitions(connection) -> set[str]:
    """The partitions of partitioned tables (revision 0006): part of their table, not tables the owners declare."""
    return set(connection.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars())


def _differences(connection) -> list:
    """What Alembic finds between the database and the tables, but that PostgreSQL makes every key column NOT NULL
    (the tables say nullable where sqlite-utils did: ``cloud.data.metadata``; ``predictions``' key there holds its
    partition key, revision 0006) and partitions are no tables of theirs."""
    inspector = inspect(connection)
    keys = {
        (table, name) for table in metadata.tables for name in inspector.get_pk_constraint(table)["constrained_columns"]
    }
    partitions = _partitions(connection)
    context = MigrationContext.configure(
        connection, opts={"include_name": lambda name, kind, _: kind != "table" or name not in partitions}
    )
    found = compare_metadata(context, metadata)
    changes = [change for group in found for change in (group if isinstance(group, list) else [group])]
    return [change for change in changes if not (change[0] == "modify_nullable" and change[2:4] in keys)]


def _columns(engine: Engine) -> dict[str, list[str]]:
    inspector = inspect(engine)
    with engine.connect() as connection:
        partitions = _partitions(connection)
    return {
        table: [column["name"] for column in inspector.get_columns(table)]
        for table in inspector.get_table_names()
        if table not in BOOKKEEPING and table not in partitions
    }


def test_the_baseline_builds_every_table_and_column_on_postgresql(postgres_schema, tmp_path: Path) -> None:
    engine = _upgraded(postgres_schema)
    sqlite_db = open_database(tmp_path / "cloud" / "iotsphere.db")
    sqlite_columns = {
        table: [column.name for column in sqlite_db[table].columns]
        for table in sqlite_db.table_names()
        if table not in BOOKKEEPING
    }
    sqlite_db.conn.close()

    assert _columns(engine) == {table.name: [c.name for c in table.columns] for table in metadata.sorted_tables}
    assert _columns(engine) == sqlite_columns
    with engine.connect() as connection:
        assert _differences(connection) == []
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
        assert connection.execute(text("SELECT count(*) FROM schema_migrations")).scalar() == len(MIGRATIONS)


def test_the_triggers_hold_on_postgresql(postgres_schema) -> None:
    engine = _upgraded(postgres_schema)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_log (id, at, actor, action, target, details_json, prev_hash, hash)"
                " VALUES (1, 't', 'a', 'x', 'y', '{}', '', 'h')"
            )
        )
        connection.execute(
            text("INSERT INTO director_issued VALUES ('issued-digest', 'gw-1', 1, '2026-01-31T06:00:00.000000Z')")
        )
        for msg_id, digest in (("m1", "issued-digest"), ("m2", "forged-digest"), ("m3", "forged-digest")):
            connection.execute(
                text(
                    "INSERT INTO gateway_events (msg_id, gateway_id, kind, sent_at, document_digest)"
                    " VALUES (:msg_id, 'gw-1', 'activated', :at, :digest)"
                ),
                {"msg_id": msg_id, "at": f"2026-01-31T06:00:0{msg_id[1]}.000000Z", "digest": digest},
            )
        sightings = connection.execute(
            text("SELECT document_digest, sightings, first_msg_id, first_seen_at FROM security_events")
        ).all()
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="the audit log is append-only"), engine.begin() as connection:
            connection.execute(text(statement))

    assert sightings == [("forged-digest", 2, "m2", "2026-01-31T06:00:02.000000Z")]


def test_upgrading_postgresql_at_the_head_changes_nothing(postgres_schema) -> None:
    engine = _upgraded(postgres_schema)
    before = _columns(engine)

    with engine.begin() as connection:
        upgrade(connection)

    assert _columns(engine) == before
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [(HEAD,)]
        assert connection.execute(text("SELECT count(*) FROM schema_migrations")).scalar() == len(MIGRATIONS)
