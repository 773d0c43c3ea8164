"""Many rows through one statement (the owners' bulk writes on the ingest's hot path), and reads of very many rows.

SQLAlchemy turns each row into a dict and processes every bind, which costs more than SQLite takes to insert a
small row. On SQLite the statement, written in Core, is compiled once and its text runs as driver SQL with the
rows as tuples in one ``executemany``: the same statement without the per-row work (errors still arrive as
SQLAlchemy's).

On PostgreSQL the rows go through psycopg's ``COPY ... FROM STDIN`` on the raw connection, inside the caller's
transaction (they commit or roll back with the rest of it). A plain INSERT is one COPY into the table. COPY cannot
skip a conflicting row, so an insert that does nothing on conflict copies the rows straight into the table under a
savepoint and only when a key is taken (a gateway's resend, a message another worker stored meanwhile) rolls that
back and stages them: COPY into a temporary table, then the statement itself as ``INSERT ... SELECT`` from it, so
the rows stored are those the INSERT would have stored. An upsert that updates is always staged. Rows go in
COPY's text format, which takes each value as its column's text whatever the column's exact type: the binary
format needs each exact type, for at most 1.2x the rate in a bare loop. ``python -m bench ingest_postgres``
measures the paths beside bare psycopg COPY loops.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import psycopg
from psycopg import errors
from sqlalchemy import Connection, Select, bindparam, column, select, table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import TextClause

_INSERTS: dict[str, ModuleType] = {"sqlite": sqlite, "postgresql": postgresql}
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
        self._copy: _Copy | None = None

    def write(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """Insert ``rows`` (values in ``columns`` order); how many rows it changed."""
        if not rows:
            return 0
        if connection.dialect.name == "sqlite":
            return connection.exec_driver_sql(self._sqlite(connection), rows).rowcount
        return self._copier(connection).write(connection, lambda copy: _write_rows(copy, rows))

    def write_copy_text(self, connection: Connection, chunks: Sequence[str]) -> int:
        """PostgreSQL only: insert rows given in COPY's text format (each value as ``copy_text`` gives it, a tab
        between values, a newline after each row), in chunks of whole rows; how many rows it changed. A writer whose
        rows arrive packed (``features.add_packed_rows``) formats them so without building a tuple per row; each
        chunk goes to the server as it is written, which parses it while the next is written."""
        if not chunks:
            return 0
        return self._copier(connection).write(connection, lambda copy: _write_chunks(copy, chunks))

    def _copier(self, connection: Connection) -> _Copy:
        if self._copy is None:
            self._copy = _Copy(connection, self._statement("postgresql"), self.columns)
        return self._copy

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


class _Copy:
    """One BulkInsert's statement as COPY on PostgreSQL: straight into the table, or through a staging table."""

    def __init__(self, connection: Connection, statement: Insert, columns: Sequence[str]) -> None:
        quote = connection.dialect.identifier_preparer.quote
        target, names = quote(statement.table.name), ", ".join(quote(name) for name in columns)

        def sql(insert: Insert) -> str:
            values = {name: bindparam(name) for name in columns}
            return str(insert.values(values).compile(dialect=connection.dialect))

        # told apart by their SQL from an unadorned insert's
        plain = postgresql.insert(statement.table)
        self.conflicts = sql(statement) != sql(plain)
        self.direct = sql(statement) in (sql(plain), sql(plain.on_conflict_do_nothing()))
        self.copy = f"COPY {target} ({names}) FROM STDIN"
        stage = table(f"bulk_{statement.table.name}", *(column(name) for name in columns))
        staged = quote(stage.name)
        # the columns alone (no key, no default, no NOT NULL: the statement's insert checks those), of a partitioned
        # parent as of any table; should a step fail, the rollback of the transaction (or of a savepoint around
        # the write) takes the temporary table away
        self.create = f"CREATE TEMPORARY TABLE {staged} AS SELECT {names} FROM {target} WITH NO DATA"
        self.copy_staged = f"COPY {staged} ({names}) FROM STDIN"
        self.insert_staged = statement.from_select(list(columns), select(stage))
        self.drop = f"DROP TABLE {staged}"

    def write(self, connection: Connection, feed: _Feed) -> int:
        """Copy in the rows ``feed`` writes; how many were stored or updated. Errors arrive as SQLAlchemy's."""
        if not connection.in_transaction():
            connection.begin()  # as a statement run through SQLAlchemy would: the caller's commit takes the rows
        raw: psycopg.Connection = connection.connection.driver_connection
        try:
            if not self.conflicts:
                return _copy(raw, self.copy, feed)
            if raw.autocommit:  # no transaction of the caller's to hold the steps: the rows get one of their own
                with raw.transaction():
                    return self._write(connection, raw, feed)
            return self._write(connection, raw, feed)
        except psycopg.Error as exc:
            raise DBAPIError.instance(self.copy, None, exc, psycopg.Error) from exc

    def _write(self, connection: Connection, raw: psycopg.Connection, feed: _Feed) -> int:
        if not self.direct:
            return self._staged(connection, raw, feed)
        raw.execute("SAVEPOINT bulk_copy")
        try:
            written = _copy(raw, self.copy, feed)
        except errors.UniqueViolation:
            raw.execute("ROLLBACK TO SAVEPOINT bulk_copy")
            written = self._staged(connection, raw, feed)
        raw.execute("RELEASE SAVEPOINT bulk_copy")
        return written

    def _staged(self, connection: Connection, raw: psycopg.Connection, feed: _Feed) -> int:
        raw.execute(self.create)
        _copy(raw, self.copy_staged, feed)
        written = connection.execute(self.insert_staged, execution_options=_ROWCOUNT).rowcount
        raw.execute(self.drop)
        return written


#: writes a write's rows into an open COPY (text format)
_Feed = Callable[[psycopg.Copy], None]


def _copy(raw: psycopg.Connection, statement: str, feed: _Feed) -> int:
    """The rows ``feed`` writes through one COPY ``statement``; how many it stored."""
    with raw.cursor() as cursor:
        with cursor.copy(statement) as copy:
            feed(copy)
        return cursor.rowcount


def _write_chunks(copy: psycopg.Copy, chunks: Sequence[str]) -> None:
    for chunk in chunks:
        copy.write(chunk)


def _write_rows(copy: psycopg.Copy, rows: Sequence[Sequence[Any]]) -> None:
    write = copy.write_row
    for row in rows:
        write(row)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_text(value: str | None) -> str:
    """A text value as COPY's text format takes it: NULL as ``\\N``, backslash, tab, newline and carriage return
    escaped."""
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


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


def fetch_one(connection: Connection, query: TextClause, parameters: dict[str, Any]) -> Sequence[Any]:
    """The one row of a read returning a few very large values (columns concatenated by an aggregate): on PostgreSQL
    in the binary result format, where the text format sends bytea as hex, twice the bytes, for the driver to decode
    back (a million feature rows' blobs: read measured 1.6-2.6x faster). Errors still arrive as SQLAlchemy's."""
    if connection.dialect.name != "postgresql":
        return connection.execute(query, parameters).one()
    if not connection.in_transaction():
        connection.begin()  # as a statement run through SQLAlchemy would
    compiled = query.bindparams(**parameters).compile(dialect=connection.dialect)
    raw: psycopg.Connection = connection.connection.driver_connection
    try:
        with raw.cursor(binary=True) as cursor:
            return cursor.execute(str(compiled), compiled.params).fetchone()
    except psycopg.Error as exc:
        raise DBAPIError.instance(str(compiled), compiled.params, exc, psycopg.Error) from exc
