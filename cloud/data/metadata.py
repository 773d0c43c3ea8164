"""The one ``MetaData`` every owner's tables join, and what both dialects need said once.

The tables are those the legacy steps (``cloud.data.legacy``) made with sqlite-utils, column for column: a new SQLite
file must look exactly like an old one, so the sqlite-utils code still running on both sees no difference
(tests/data/test_baseline_matches_legacy.py). That is why keys are ``nullable=True`` where sqlite-utils declared no
NOT NULL (PostgreSQL makes every key column NOT NULL anyway) and floats are REAL on SQLite.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import REAL, Connection, Double, MetaData, Table, text
from sqlalchemy.dialects import postgresql, sqlite

metadata = MetaData()

#: a float column: REAL on SQLite, as sqlite-utils made them; DOUBLE PRECISION on PostgreSQL (REAL there is 4 bytes)
FLOAT = Double().with_variant(REAL(), "sqlite")


def partial(condition: str) -> dict[str, Any]:
    """The keyword arguments of an index over only the rows meeting ``condition`` (SQL both dialects read)."""
    return {"sqlite_where": text(condition), "postgresql_where": text(condition)}


def upsert(connection: Connection, table: Table) -> sqlite.Insert | postgresql.Insert:
    """An INSERT on ``table`` that takes ``on_conflict_do_update``/``on_conflict_do_nothing``: both dialects have the
    clause, each in its own ``insert``."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)
