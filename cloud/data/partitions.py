"""Tables partitioned by day on PostgreSQL, and old rows deleted in small batches on either database.

On PostgreSQL ``features`` and ``predictions`` are ``PARTITION BY RANGE`` on their time text (revision 0006): one
partition per UTC day, ``{table}_pYYYYMMDD`` holding keys in ['YYYY-MM-DD', next day), and ``{table}_default`` for
any row no day partition holds, so no row is ever refused. A day at 100,000 gateways is 48 M feature rows and 144 M
predictions (docs/scaling.md): a week per partition would be a billion rows, and retention drops whole partitions,
so a day is also the finest step retention keeps or drops. Stored times are fixed-width ISO-8601 text whose order is
time order, and a bare date sorts before every time of that day, so the bounds are dates.

SQLite has no partitions: there, ``ensure_days`` does nothing and old rows go by ``delete_batch``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Table, column, delete, func, insert, select, text, tuple_
from sqlalchemy import table as table_clause
from sqlalchemy.sql.expression import TableClause

#: how long a partition change waits for a table lock before giving up (it is retried on the next pass): a change
#: queued behind a long read would otherwise hold up every insert queued behind it
LOCK_TIMEOUT = "5s"
_DAY = re.compile(r"_p(\d{8})$")


def day_partition(table: str, day: date) -> str:
    """The name of ``table``'s partition of ``day``."""
    return f"{table}_p{day:%Y%m%d}"


def default_partition(table: str) -> str:
    """The partition of ``table`` holding every row no day partition does."""
    return f"{table}_default"


def day_partitions(connection: Connection, table: str) -> dict[date, str]:
    """``table``'s day partitions by day (none on SQLite, or before revision 0006)."""
    if connection.dialect.name != "postgresql":
        return {}
    names = connection.execute(
        text(
            "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = to_regclass(:table)"
        ),
        {"table": table},
    ).scalars()
    found = {}
    for name in names:
        match = _DAY.search(name)
        if match and name == day_partition(table, day := _parse_day(match.group(1))):
            found[day] = name
    return found


def _parse_day(digits: str) -> date:
    return date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))


def ensure_days(connection: Connection, table: str, key: str, days: Iterable[date]) -> list[str]:
    """Make ``table``'s partitions of ``days`` that do not exist yet; the names made. Cheap when they all exist (one
    catalog read), so callers may ask every pass. Rows of a new day that wait in the default partition move into it
    (PostgreSQL refuses a partition whose range has rows there). Runs in the caller's transaction; the default
    partition is locked until it ends, so concurrent callers make each partition once."""
    if connection.dialect.name != "postgresql":
        return []
    wanted = set(days)
    if not wanted - day_partitions(connection, table).keys():
        return []
    default, made = default_partition(table), []
    with _lock_timeout(connection):
        connection.execute(text(f"LOCK TABLE {default} IN ACCESS EXCLUSIVE MODE"))
        for day in sorted(wanted - day_partitions(connection, table).keys()):
            made.append(_make_day(connection, table, key, day))
    return made


def _make_day(connection: Connection, table: str, key: str, day: date) -> str:
    """Make the day's partition, moving the day's rows out of the default partition (which the caller locked)."""
    default = default_partition(table)
    name, (start, end) = day_partition(table, day), _bounds(day)
    connection.execute(text(f"CREATE TABLE {name} (LIKE {table} INCLUDING DEFAULTS)"))
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} WHERE {key} >= :start AND {key} < :end RETURNING *)"
            f" INSERT INTO {name} SELECT * FROM moved"
        ),
        {"start": start, "end": end},
    )
    bounds = f"FOR VALUES FROM ('{start}') TO ('{end}')"
    connection.execute(text(f"ALTER TABLE {table} ATTACH PARTITION {name} {bounds}"))
    return name


@contextmanager
def _lock_timeout(connection: Connection) -> Iterator[None]:
    """``LOCK_TIMEOUT`` for the block's statements, the session's own after it (the caller's transaction goes on)."""
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    yield
    connection.execute(text("SET LOCAL lock_timeout TO DEFAULT"))


def _bounds(day: date) -> tuple[str, str]:
    return day.isoformat(), (day + timedelta(days=1)).isoformat()


def rows_in(connection: Connection, name: str) -> int:
    """Rows in one partition."""
    return connection.execute(select(func.count()).select_from(table_clause(name))).scalar_one()


def drop_day(
    connection: Connection, table: Table, day: date, keep: Callable[[TableClause], ColumnElement] | None = None
) -> tuple[int, int]:
    """Detach and drop ``table``'s partition of ``day``; (rows it held, rows kept). Rows meeting ``keep`` (given the
    detached partition as a table) go back into ``table`` first, which puts them in the default partition."""
    name = day_partition(table.name, day)
    rows = rows_in(connection, name)
    with _lock_timeout(connection):
        connection.execute(text(f"ALTER TABLE {table.name} DETACH PARTITION {name}"))
    kept = 0
    if keep is not None:
        detached = table_clause(name, *(column(c.name) for c in table.columns))
        names = [c.name for c in table.columns]
        statement = insert(table).from_select(names, select(detached).where(keep(detached)))
        kept = connection.execute(statement, execution_options={"preserve_rowcount": True}).rowcount
    connection.execute(text(f"DROP TABLE {name}"))
    return rows, kept


def keys_after(
    connection: Connection, key: Sequence[Column], old: ColumnElement, after: tuple[Any, ...] | None, limit: int
) -> list[tuple[Any, ...]]:
    """The ``key`` of the next ``limit`` rows meeting ``old``, in key order after the key ``after`` (None: from the
    start). A read: retention takes it outside its write transaction, then deletes the rows by key
    (``delete_keys``), so SQLite's write lock is held for the deletes alone, and a whole pass reads the key once."""
    query = select(*key).where(old).order_by(*key).limit(limit)
    if after is not None:
        query = query.where(tuple_(*key) > tuple_(*after))
    return [tuple(row) for row in connection.execute(query)]


def delete_keys(
    connection: Connection, table: Table, key: Sequence[Column], old: ColumnElement, keys: Sequence[tuple[Any, ...]]
) -> int:
    """Delete the rows of ``keys`` that still meet ``old`` (a row may have changed since they were read); how many."""
    if not keys:
        return 0
    return connection.execute(delete(table).where(tuple_(*key).in_(list(keys)), old)).rowcount
