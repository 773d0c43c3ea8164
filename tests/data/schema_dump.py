"""What a SQLite file's schema is, as SQLite itself reports it: the form two files are compared in.

Tables by ``PRAGMA table_xinfo`` (name, declared type, NOT NULL, default, key position), whether they keep a rowid,
their indexes by ``PRAGMA index_list``/``index_xinfo`` and, like triggers, by their SQL with quoting and layout
dropped (sqlite-utils quotes every name, SQLAlchemy none). The bookkeeping of Alembic is left out: only files it
manages have it.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

BOOKKEEPING = {"alembic_version"}


def normalized(sql: str | None) -> str | None:
    return None if sql is None else re.sub(r"\s+", " ", sql.replace('"', "").replace("[", "").replace("]", "")).strip()


def sqlite_schema(conn: sqlite3.Connection) -> dict[str, Any]:
    tables = [
        (name, sql)
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if name not in BOOKKEEPING and not name.startswith("sqlite_")
    ]
    schema: dict[str, Any] = {}
    for name, sql in tables:
        indexes = {}
        for _, index, unique, origin, partial in conn.execute(f'PRAGMA index_list("{name}")'):
            # a WITHOUT ROWID table's key is the table itself: no sqlite_master row
            sql_of_index = conn.execute("SELECT max(sql) FROM sqlite_master WHERE name = ?", [index]).fetchone()[0]
            columns = [(row[1], row[2], row[3], row[5]) for row in conn.execute(f'PRAGMA index_xinfo("{index}")')]
            indexes[index] = (unique, origin, partial, columns, normalized(sql_of_index))
        schema[name] = {
            "columns": conn.execute(f'PRAGMA table_xinfo("{name}")').fetchall(),
            "without_rowid": normalized(sql).endswith("WITHOUT ROWID"),
            "indexes": indexes,
        }
    schema["triggers"] = {
        name: normalized(sql)
        for name, sql in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
    }
    return schema


def rows_of_every_table(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return {
        name: sorted(conn.execute(f'SELECT * FROM "{name}"').fetchall(), key=repr)
        for name in names
        if name not in BOOKKEEPING
    }
