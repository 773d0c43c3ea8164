"""features, predictions: partitioned by day on PostgreSQL (issue 13 §2), so retention drops a day's rows as one
table instead of deleting hundreds of millions of rows (``cloud.data.partitions`` says why a day). Each table is
renamed, made again ``PARTITION BY RANGE`` on its time (``window_end``, ``made_at``) with a default partition and a
partition per day its rows hold, its rows copied in, and the old table dropped: nothing is lost.

A partitioned table's primary key must hold the partition key: ``features``' already does; ``predictions``' becomes
(prediction_id, arm, made_at). A prediction sent again has the same ``made_at``, so inserts that ignore a conflict
still ignore it. Its ``made_at`` is NOT NULL from here; a row without one (ingest never stored any) keeps the epoch.

SQLite has no partitions: nothing changes there.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from datetime import date

from alembic import op
from sqlalchemy import text

from cloud.data.partitions import default_partition, ensure_days

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: table, partition key, primary key before and after, its other indexes (name, columns)
TABLES = (
    (
        "features",
        "window_end",
        ("feature_set_version", "window_end", "device_id"),
        ("feature_set_version", "window_end", "device_id"),
        (),
    ),
    (
        "predictions",
        "made_at",
        ("prediction_id", "arm"),
        ("prediction_id", "arm", "made_at"),
        (("idx_predictions_device_id_prediction_type_made_at", ("device_id", "prediction_type", "made_at")),),
    ),
)
#: what a prediction without a ``made_at`` gets (``shared.limits``: where a gateway's unset clock starts)
EPOCH = "1970-01-01T00:00:00.000000Z"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, key, _, primary, indexes in TABLES:
        _rebuild(table, key, primary, indexes, partitioned=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, key, primary, _, indexes in TABLES:
        _rebuild(table, key, primary, indexes, partitioned=False)


def _rebuild(
    table: str, key: str, primary: tuple[str, ...], indexes: tuple[tuple[str, tuple[str, ...]], ...], partitioned: bool
) -> None:
    """``table`` made again, partitioned by day of ``key`` or not, with ``primary`` as its key and every row (a row
    whose key the narrower key of a downgrade holds twice is kept once)."""
    connection, old = op.get_bind(), f"{table}_before_0006"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT {table}_pkey TO {old}_pkey")
    for name, _ in indexes:
        op.execute(f"DROP INDEX {name}")
    partition_by = f" PARTITION BY RANGE ({key})" if partitioned else ""
    op.execute(f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS){partition_by}")
    if key not in primary:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {key} DROP NOT NULL")
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({', '.join(primary)})")
    for name, columns in indexes:
        op.execute(f"CREATE INDEX {name} ON {table} ({', '.join(columns)})")
    if partitioned:
        op.execute(f"CREATE TABLE {default_partition(table)} PARTITION OF {table} DEFAULT")
        ensure_days(connection, table, key, _days(connection, old, key))
    columns = [row[0] for row in connection.execute(text(f"SELECT * FROM {old} LIMIT 0")).cursor.description]
    values = [f"coalesce({name}, '{EPOCH}')" if name == key else name for name in columns]
    selected = f"SELECT {', '.join(values)} FROM {old}"
    op.execute(f"INSERT INTO {table} ({', '.join(columns)}) {selected} ON CONFLICT DO NOTHING")
    op.execute(f"DROP TABLE {old}")


def _days(connection, table: str, key: str) -> list[date]:
    """The days the table's times fall on; text that does not start with a date has none (its row goes to the
    default partition)."""
    days = []
    prefixes = connection.execute(
        text(f"SELECT DISTINCT left({key}, 10) FROM {table} WHERE {key} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}'")
    ).scalars()
    for prefix in prefixes:
        try:
            days.append(date.fromisoformat(prefix))
        except ValueError:
            continue
    return days
