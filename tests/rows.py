"""Rows put into or read out of the cloud's tables by tests, on whichever database the test runs (SQLite or
PostgreSQL): SQLAlchemy Core on the tables ``cloud.data.schema`` declares, in the services' own transaction
(``write_transaction``). For seeding states no service makes and checking what was stored; the code under test
goes through its owners."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table, func, insert, select, text, update

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
