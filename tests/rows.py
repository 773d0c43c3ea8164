"""Rows put into or read out of the cloud's tables by tests, on whichever database the test runs (SQLite or
PostgreSQL): SQLAlchemy Core on the tables ``cloud.data.schema`` declares, in the services' own transaction
(``write_transaction``). For seeding states no service makes and checking what was stored; the code under test
goes through its owners."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, func, insert, select, text, update

from cloud.data.connections import Database, connection_of, write_transaction
from cloud.data.schema import metadata


def table(name: str) -> Table:
    return metadata.tables[name]


def insert_rows(db: Database, name: str, rows: Iterable[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into table ``name`` and commit."""
    rows = [dict(row) for row in rows]
    if rows:
        with write_transaction(db) as connection:
            connection.execute(insert(table(name)), rows)


def rows_of(db: Database, name: str, **equal: Any) -> list[dict[str, Any]]:
    """Every row of table ``name`` (whose columns equal ``equal``), in insertion (primary key) order."""
    stored = table(name)
    query = select(stored).where(*(stored.c[column] == value for column, value in equal.items()))
    query = query.order_by(*stored.primary_key.columns) if stored.primary_key.columns else query
    return [dict(row) for row in connection_of(db).execute(query).mappings()]


def count(db: Database, name: str, **equal: Any) -> int:
    stored = table(name)
    query = select(func.count()).select_from(stored)
    return connection_of(db).execute(query.where(*(stored.c[c] == v for c, v in equal.items()))).scalar_one()


def execute(db: Database, sql: str, **parameters: Any) -> list[dict[str, Any]]:
    """A statement both dialects read alike (``:name`` parameters), committed; its rows if it returns any."""
    with write_transaction(db) as connection:
        result = connection.execute(text(sql), parameters)
        return [dict(row) for row in result.mappings()] if result.returns_rows else []


def update_rows(db: Database, name: str, where: Mapping[str, Any], values: Mapping[str, Any]) -> int:
    """Set ``values`` on the rows of table ``name`` whose columns equal ``where``, and commit; how many."""
    stored = table(name)
    with write_transaction(db) as connection:
        condition = [stored.c[column] == value for column, value in where.items()]
        return connection.execute(update(stored).where(*condition).values(**values)).rowcount


def insert_row(db: Database, name: str, row: Mapping[str, Any]) -> None:
    insert_rows(db, name, [row])


#: the append-only triggers of the audit log and its checkpoints (the baseline's)
_APPEND_ONLY = (
    "audit_log_no_update",
    "audit_log_no_delete",
    "audit_checkpoints_no_update",
    "audit_checkpoints_no_delete",
)


@contextmanager
def tampering(db: Database) -> Iterator[Connection]:
    """A write transaction the append-only triggers do not stop: what someone holding the database can do (on
    SQLite the file's owner drops them; on PostgreSQL a superuser's session turns triggers off)."""
    with write_transaction(db) as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET LOCAL session_replication_role = replica"))
        else:
            for trigger in _APPEND_ONLY:
                connection.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"))
        yield connection


@contextmanager
def refusing_audit_entries(db: Database) -> Iterator[None]:
    """Every insert into ``audit_log``, on every connection, fails with an ``IntegrityError`` saying ``no`` until the
    block ends: an audit entry that cannot be written."""
    postgresql = connection_of(db).dialect.name == "postgresql"
    with write_transaction(db) as connection:
        if postgresql:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation', MESSAGE = 'no'; END $$"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW "
                    "EXECUTE FUNCTION refuse_audit()"
                )
            )
        else:
            connection.execute(
                text("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'no'); END")
            )
    try:
        yield
    finally:
        with write_transaction(db) as connection:
            connection.execute(text("DROP TRIGGER refuse_audit" + (" ON audit_log" if postgresql else "")))
            if postgresql:
                connection.execute(text("DROP FUNCTION refuse_audit()"))


def audit_head(db: Database) -> int:
    """The newest audit entry's id; 0 for none."""
    return max((row["id"] for row in rows_of(db, "audit_log")), default=0)
