"""Retention (issue 13 §2): what removing old predictions costs, and what ingest waits meanwhile.

Method. ROWS predictions spread over DAYS days (one ``made_at`` a row, in time order, the ids random as gateways
make them), half of the days before the cut-off of ``--keep-days`` KEEP_DAYS, are stored through the owner
(untimed). Then ``cloud.retention.apply_retention`` runs while a writer thread commits one prediction every
WRITE_EVERY_S seconds on its own connection, as an ingest worker would; the writer's commit times are recorded.

- ``sqlite``: a file; retention deletes the old rows in batches (``BATCH_ROWS`` a write transaction).
- ``postgresql``: a schema of its own in the ``test`` database (dropped afterwards), the rows in day partitions;
  retention detaches and drops the old days. ``delete_instead`` is the same rows removed by one
  ``DELETE ... WHERE made_at < cut-off`` from the same table filled again: what partitions save.

Reported: rows removed per second, and the writer's p50 and longest commit during the run, beside its p50 before;
on PostgreSQL also the WAL written (from a vacuumed table: the seeding excluded, the writer's few rows included) and
the bytes the table holds on disk afterwards (a DELETE frees nothing until VACUUM).
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from cloud.data import engine as engines
from cloud.data import predictions
from cloud.data.connections import Database, connection_of, write_transaction
from cloud.retention import apply_retention, cutoff_day
from cloud.storage import open_database
from tests.postgres_run import SERVER, Schema

ROWS = 400_000
DAYS = 8
KEEP_DAYS = 4
WRITE_EVERY_S = 0.02
NOW = datetime.now(UTC)


def _rows(start: int, count: int) -> list[tuple]:
    first = cutoff_day(KEEP_DAYS, NOW) - timedelta(days=DAYS // 2)
    step = DAYS * 86_400 / ROWS
    rows = []
    for n in range(start, start + count):
        made = datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(seconds=n * step)
        made_at = made.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append(
            (uuid.uuid4().hex, "champion", f"wh-{n % 20_000}", "t", "component_failure", "m", "1", "{}", 1.0)
            + (made_at, made_at, f"gw-{n % 1_000}", None)
        )
    return rows


def _fill(db: Database) -> None:
    with write_transaction(db) as connection:
        first = cutoff_day(KEEP_DAYS, NOW) - timedelta(days=DAYS // 2)
        predictions.ensure_partitions(connection, [first + timedelta(days=n) for n in range(DAYS + 1)])
    for start in range(0, ROWS, 20_000):
        with write_transaction(db) as connection:
            predictions.add_predictions(connection, _rows(start, 20_000))


def _writer(url: str | Path, stop: threading.Event, times: list[float]) -> None:
    db = open_database(url)
    try:
        n = 0
        while not stop.is_set():
            row = _rows(0, 1)[0]
            made_at = NOW.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            started = time.perf_counter()
            with write_transaction(db) as connection:
                predictions.add_predictions(
                    connection, [(f"live-{n}-{uuid.uuid4().hex}", *row[1:9], made_at, *row[10:])]
                )
            times.append(time.perf_counter() - started)
            n += 1
            stop.wait(WRITE_EVERY_S)
    finally:
        db.close()


def _removal(url: str | Path) -> dict:
    """Retention of the stored rows with the writer going, its commits timed before and during."""
    db = open_database(url)
    try:
        stop, before, during = threading.Event(), [], []
        writer = threading.Thread(target=_writer, args=(url, stop, before))
        writer.start()
        time.sleep(2)
        stop.set()
        writer.join()
        stop = threading.Event()
        writer = threading.Thread(target=_writer, args=(url, stop, during))
        writer.start()
        started = time.perf_counter()
        removed = apply_retention(db, KEEP_DAYS, now=NOW, actor="bench")
        seconds = time.perf_counter() - started
        stop.set()
        writer.join()
    finally:
        db.close()
    rows = sum(r.rows for r in removed)
    return {
        "rows_removed": rows,
        "partitions_dropped": sum(len(r.partitions) for r in removed),
        "seconds": round(seconds, 3),
        "rows_per_s": round(rows / seconds),
        "writer_commit_ms_p50_before": round(statistics.median(before) * 1000, 2),
        "writer_commit_ms_p50_during": round(statistics.median(during) * 1000, 2),
        "writer_commit_ms_max_during": round(max(during) * 1000, 2),
        "writer_commits_during": len(during),
    }


_WAL = text("SELECT pg_current_wal_lsn()")
_WAL_SINCE = text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :lsn)")
#: bytes the table's partitions (the default one included) hold on disk
_SIZE = text(
    "SELECT coalesce(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits"
    " WHERE inhparent = CAST('predictions' AS regclass)"
)


def _scalar(db: Database, query, **parameters) -> object:
    with write_transaction(db) as connection:
        return connection.execute(query, parameters).scalar()


def _vacuum(db: Database) -> None:
    """The table as days-old rows are: vacuumed, hint bits set (a first read of fresh rows writes whole pages to the
    WAL, which would be charged to whichever way of removing them came first)."""
    connection_of(db).execute(text("VACUUM predictions"))


def _postgres() -> dict:
    admin = engines.create(SERVER)
    schema = Schema(admin, f"bench_retention_{uuid.uuid4().hex[:8]}")  # made and migrated
    try:
        url = schema.url
        db = open_database(url)
        try:
            _fill(db)
            _vacuum(db)
            lsn = _scalar(db, _WAL)
            figures = _removal(url)
            figures["wal_bytes"] = int(_scalar(db, _WAL_SINCE, lsn=lsn))
            figures["table_bytes_after"] = int(_scalar(db, _SIZE))
            with write_transaction(db) as connection:
                connection.execute(text("TRUNCATE predictions"))
            _fill(db)
            _vacuum(db)
            lsn, started = _scalar(db, _WAL), time.perf_counter()
            with write_transaction(db) as connection:
                cut = cutoff_day(KEEP_DAYS, NOW).isoformat()
                deleted = connection.execute(text("DELETE FROM predictions WHERE made_at < :cut"), {"cut": cut})
            figures["delete_instead"] = {
                "rows": deleted.rowcount,
                "seconds": round(time.perf_counter() - started, 3),
                "wal_bytes": int(_scalar(db, _WAL_SINCE, lsn=lsn)),
                "table_bytes_after": int(_scalar(db, _SIZE)),
            }
        finally:
            db.close()
        return figures
    finally:
        schema.drop()
        admin.dispose()


def run() -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cloud" / "iotsphere.db"
        db = open_database(path)
        _fill(db)
        db.close()
        sqlite = _removal(path)
    return {"rows": ROWS, "days": DAYS, "keep_days": KEEP_DAYS, "sqlite": sqlite, "postgresql": _postgres()}
