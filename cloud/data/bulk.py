"""Many rows through one statement in one ``executemany`` (the owners' bulk writes on the ingest's hot path), and
reads of very many rows.

SQLAlchemy turns each row into a dict and processes every bind, which costs more than SQLite takes to insert a
small row. On SQLite the statement, written in Core, is compiled once and its text runs as driver SQL with the
rows as tuples: the same statement without the per-row work (errors still arrive as SQLAlchemy's).

On PostgreSQL a plain INSERT, or one that does nothing on conflict, becomes psycopg's ``COPY ... FROM STDIN`` on the
raw connection, inside the caller's transaction (so it commits or rolls back with the rest). COPY cannot skip a
conflicting row, so a do-nothing insert copies the rows straight into the table under a savepoint, and only when a
key is taken (a gateway's resend, a message another worker stored meanwhile) copies them into a temporary table
and inserts them from there ``ON CONFLICT DO NOTHING``: the rows stored are those the INSERT would have stored. The
direct copy runs at about three times the rate of the staged one and ten times that of a multi-row VALUES
(``python -m bench ingest_postgres``). COPY's text format: measured faster than binary for these columns (text,
bytea, double), and it takes a value for any column type as its text. Upserts that update stay multi-row VALUES.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import psycopg
from psycopg import errors
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
        self._copies: dict[str, _Copy | None] = {}

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (values in ``columns`` order) with one executemany; how many rows it changed."""
        if not rows:
            return 0
        if connection.dialect.name == "sqlite":
            return connection.exec_driver_sql(self._sqlite(connection), rows).rowcount
        if copy := self._copier(connection):
            return copy.write(connection, rows)
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

    def _copier(self, connection: Connection) -> _Copy | None:
        """The statement as a COPY on PostgreSQL when it is a plain INSERT or one doing nothing on conflict (told
        apart by its SQL from an unadorned insert's)."""
        dialect = connection.dialect.name
        if dialect not in self._copies:
            self._copies[dialect] = None
            if dialect == "postgresql":
                statement = self._statement(dialect)

                def sql(insert: Insert) -> str:
                    values = {column: bindparam(column) for column in self.columns}
                    return str(insert.values(values).compile(dialect=connection.dialect))

                plain = postgresql.insert(statement.table)
                if sql(statement) in (sql(plain), sql(plain.on_conflict_do_nothing())):
                    skip = sql(statement) != sql(plain)
                    self._copies[dialect] = _Copy(connection, statement.table.name, self.columns, skip_conflicts=skip)
        return self._copies[dialect]

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


class _Copy:
    """``COPY table (columns) FROM STDIN`` of one BulkInsert, with the staged insert a conflict falls back to."""

    def __init__(self, connection: Connection, table: str, columns: Sequence[str], *, skip_conflicts: bool) -> None:
        quote = connection.dialect.identifier_preparer.quote
        names = ", ".join(quote(column) for column in columns)
        self.skip_conflicts = skip_conflicts
        self.copy = f"COPY {quote(table)} ({names}) FROM STDIN"
        stage = quote(f"bulk_{table}")
        # LIKE takes a partitioned parent's columns as any table's; should a step fail, the rollback of the
        # transaction (or of a savepoint around the write) takes the temporary table away
        self.staged = (
            f"CREATE TEMPORARY TABLE {stage} (LIKE {quote(table)})",
            f"COPY {stage} ({names}) FROM STDIN",
            f"INSERT INTO {quote(table)} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING",
            f"DROP TABLE {stage}",
        )

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Copy ``rows`` in; how many were stored. Errors arrive as SQLAlchemy's."""
        if not connection.in_transaction():
            connection.begin()  # as a statement run through SQLAlchemy would: the caller's commit takes the rows
        raw: psycopg.Connection = connection.connection.driver_connection
        statement = self.copy
        try:
            if not self.skip_conflicts:
                return _copy(raw, statement, rows)
            if raw.autocommit:  # no transaction of the caller's to hold the savepoint: the rows get one of their own
                with raw.transaction():
                    return self._skipping_conflicts(raw, rows)
            return self._skipping_conflicts(raw, rows)
        except psycopg.Error as exc:
            raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc

    def _skipping_conflicts(self, raw: psycopg.Connection, rows: Sequence[Sequence[Any]]) -> int:
        raw.execute("SAVEPOINT bulk_copy")
        try:
            written = _copy(raw, self.copy, rows)
        except errors.UniqueViolation:
            raw.execute("ROLLBACK TO SAVEPOINT bulk_copy")
            create, copy, insert, drop = self.staged
            raw.execute(create)
            _copy(raw, copy, rows)
            written = raw.execute(insert).rowcount
            raw.execute(drop)
        raw.execute("RELEASE SAVEPOINT bulk_copy")
        return written


def _copy(raw: psycopg.Connection, statement: str, rows: Sequence[Sequence[Any]]) -> int:
    """``rows`` through one COPY ``statement`` (text format); how many it stored."""
    with raw.cursor() as cursor:
        with cursor.copy(statement) as copy:
            write = copy.write_row
            for row in rows:
                write(row)
        return cursor.rowcount


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
