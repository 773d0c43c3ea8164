"""Many rows through one statement in one ``executemany`` (the owners' bulk writes on the ingest's hot path), and
reads of very many rows.

SQLAlchemy turns each row into a dict and processes every bind, which costs more than SQLite takes to insert a
small row. On SQLite the statement, written in Core, is compiled once and its text runs as driver SQL with the
rows as tuples: the same statement without the per-row work (errors still arrive as SQLAlchemy's). Other
dialects get the rows through SQLAlchemy (a COPY on PostgreSQL is issue 13 §2's).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, Select, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

_INSERTS: dict[str, ModuleType] = {"sqlite": sqlite, "postgresql": postgresql}
_PARAMETERS = 65_535
#: SQLAlchemy reports an INSERT's rowcount only when asked to
_ROWCOUNT = {"preserve_rowcount": True}


class BulkInsert:
    """An INSERT for many rows of ``columns``, built once per dialect by ``build(insert, dialect_name)`` with that
    dialect's ``insert`` (so ``on_conflict_do_nothing``/``do_update`` are there on both)."""

    def __init__(self, build: Callable[[Callable[..., Insert], str], Insert], columns: Sequence[str]) -> None:
        self._build = build
        self.columns = tuple(columns)
        self._statements: dict[str, Insert] = {}
        self._sqlite_text: str | None = None

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (values in ``columns`` order) with one executemany; how many rows it changed."""
        if not rows:
            return 0
        if connection.dialect.name == "sqlite":
            return connection.exec_driver_sql(self._sqlite(connection), rows).rowcount
        # one multi-row VALUES per chunk (within PostgreSQL's 65,535 parameters): its rowcount counts the rows
        # written, which an executemany's does not report
        statement, chunk, written = self._statement(connection.dialect.name), _PARAMETERS // len(self.columns), 0
        for start in range(0, len(rows), chunk):
            values = [dict(zip(self.columns, row, strict=True)) for row in rows[start : start + chunk]]
            written += connection.execute(statement.values(values), execution_options=_ROWCOUNT).rowcount
        return written

    def _statement(self, dialect: str) -> Insert:
        statement = self._statements.get(dialect)
        if statement is None:
            statement = self._statements[dialect] = self._build(_INSERTS[dialect].insert, dialect)
        return statement

    def _sqlite(self, connection: Connection) -> str:
        if self._sqlite_text is None:
            values = {column: bindparam(column) for column in self.columns}
            compiled = self._statement("sqlite").values(values).compile(dialect=connection.dialect)
            # SQLAlchemy binds in the table's column order: each ``?`` is numbered with its value's place in the tuple,
            # and a constant of the statement's own (a literal in an upsert's SET) is written out
            binds = iter(compiled.positiontup or ())

            def place(_: re.Match) -> str:
                name = next(binds)
                if name in self.columns:
                    return f"?{self.columns.index(name) + 1}"
                return _literal(compiled.binds[name].effective_value)

            self._sqlite_text = re.sub(r"\?", place, str(compiled))
        return self._sqlite_text


def _literal(value: object) -> str:
    """A constant as SQL text."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool | int | float):
        return repr(int(value) if isinstance(value, bool) else value)
    raise TypeError(f"a bulk statement's constant must be text or a number, not {value!r}")


def fetch_all(connection: Connection, query: Select) -> Sequence[Sequence[Any]]:
    """Every row of ``query``, for reads of very many rows: on SQLite its compiled text runs on the driver's cursor,
    whose plain tuples cost a third of what SQLAlchemy's ``Row`` per row does (a training read of a million rows
    spent most of its time there). Errors still arrive as SQLAlchemy's."""
    if connection.dialect.name != "sqlite":
        return connection.execute(query).all()
    compiled = query.compile(dialect=connection.dialect)
    parameters = [compiled.params[name] for name in compiled.positiontup or ()]
    try:
        return connection.connection.driver_connection.execute(str(compiled), parameters).fetchall()
    except sqlite3.Error as exc:
        raise DBAPIError.instance(str(compiled), parameters, exc, sqlite3.Error) from exc
