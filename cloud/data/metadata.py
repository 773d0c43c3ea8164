"""The one ``MetaData`` every owner's tables join, and what both dialects need said once.

The tables are those the legacy steps (``cloud.data.legacy``) made with sqlite-utils, column for column: a new SQLite
file must look exactly like an old one, so the sqlite-utils code still running on both sees no difference
(tests/data/test_baseline_matches_legacy.py). That is why keys are ``nullable=True`` where sqlite-utils declared no
NOT NULL (PostgreSQL makes every key column NOT NULL anyway) and floats are REAL on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import REAL, BigInteger, ColumnElement, Connection, Double, Integer, MetaData, Table, literal, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

metadata = MetaData()

#: a float column: REAL on SQLite, as sqlite-utils made them; DOUBLE PRECISION on PostgreSQL (REAL there is 4 bytes)
FLOAT = Double().with_variant(REAL(), "sqlite")
#: a 64-bit integer: INTEGER on SQLite (64-bit there, as sqlite-utils declared it); BIGINT on PostgreSQL (INTEGER there
#: is 4 bytes, and director sequences go up to 2**53 - 1)
BIGINT = BigInteger().with_variant(Integer(), "sqlite")


def partial(condition: str) -> dict[str, Any]:
    """The keyword arguments of an index over only the rows meeting ``condition`` (SQL both dialects read)."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


def upsert(connection: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT on ``table`` that takes ``on_conflict_do_update``/``on_conflict_do_nothing``: both dialects have the
    clause, each in its own ``insert``."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


class epoch_ms(FunctionElement):
    """Milliseconds since the Unix epoch of a stored time (``cloud.data.times.iso`` text), as an integer: one
    expression owners use for both dialects (SQLite: ``julianday``; PostgreSQL: the text cast to ``timestamptz``)."""

    type = BigInteger()
    inherit_cache = True


@compiles(epoch_ms, "sqlite")
def _epoch_ms_sqlite(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(round((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400000) AS INTEGER)"


@compiles(epoch_ms, "postgresql")
def _epoch_ms_postgresql(element: epoch_ms, compiler: SQLCompiler, **kw: Any) -> str:
    moment = compiler.process(element.clauses, **kw)
    return f"CAST(round(extract(epoch FROM CAST({moment} AS timestamptz)) * 1000) AS BIGINT)"


class _JsonNumber(FunctionElement):
    """A JSON object's number at a key: the column, the key as a SQLite JSON path, the key itself."""

    type = Double()
    inherit_cache = True


def json_number(column: ColumnElement, key: str) -> _JsonNumber:
    """The number at top-level ``key`` of a JSON object stored as text, NULL where the key is absent (SQLite:
    ``json_extract``; PostgreSQL: ``->>`` on the text cast to ``jsonb``)."""
    return _JsonNumber(column, literal(f'$."{key}"'), literal(key))


@compiles(_JsonNumber, "sqlite")
def _json_number_sqlite(element: _JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    column, path, _ = element.clauses
    return f"json_extract({compiler.process(column, **kw)}, {compiler.process(path, **kw)})"


@compiles(_JsonNumber, "postgresql")
def _json_number_postgresql(element: _JsonNumber, compiler: SQLCompiler, **kw: Any) -> str:
    column, _, key = (compiler.process(clause, **kw) for clause in element.clauses)
    return f"CAST(CAST({column} AS jsonb) ->> {key} AS DOUBLE PRECISION)"
