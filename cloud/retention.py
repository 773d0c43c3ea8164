"""Retention of ``features`` and ``predictions`` (issue 13 §2): rows older than N days go, cheaply.

The cut-off is a UTC midnight: ``--keep-days N`` keeps every row of the N days before today and of today, so on
PostgreSQL whole day partitions go (detached and dropped: no row is deleted one by one) and only the default
partition's old rows are deleted. On SQLite old rows are deleted in batches of ``BATCH_ROWS``, each found by a read
and deleted in its own short write transaction, so ingest writes between them instead of waiting minutes behind one.

Predictions an outcome or a rating names are kept whatever their age: monitoring, experiments and training labels
join outcomes to their prediction's outputs, so pruning one would silently drop the observation it explains.
Feature rows are named by nothing (a recorded dataset keeps its query and hash, not its rows: one built from rows
now gone can no longer be built again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any

from sqlalchemy.exc import OperationalError

from cloud.audit import AuditLog
from cloud.config import configured_actor
from cloud.data import features, predictions
from cloud.data.connections import Database, connection_of, write_transaction
from cloud.data.partitions import LOCK_TIMEOUT, day_partition
from cloud.errors import Invalid, TemporarilyUnavailable

#: rows deleted per write transaction: a few milliseconds of SQLite's write lock; within SQLite's 32,766 parameters
BATCH_ROWS = 5_000
#: the owners of the tables retention prunes, by table
TABLES: dict[str, ModuleType] = {"features": features, "predictions": predictions}
#: day partitions made ahead of today, so ingest rarely writes into a default partition
DAYS_AHEAD = 7
#: PostgreSQL's SQLSTATE for a lock not granted within ``lock_timeout``
LOCK_NOT_AVAILABLE = "55P03"


@dataclass
class Removed:
    """What retention removed from one table (or would, in a dry run)."""

    table: str
    cutoff: date
    partitions: list[str] = field(default_factory=list)
    rows: int = 0
    kept: int = 0

    def describe(self, dry_run: bool) -> str:
        text = f"{self.table}: {'would remove' if dry_run else 'removed'} {self.rows:,} rows older than {self.cutoff}"
        if self.partitions:
            text += f" ({len(self.partitions)} day partitions {'to drop' if dry_run else 'dropped'}: "
            text += ", ".join(self.partitions) + ")"
        if self.kept:
            text += f"; kept {self.kept:,} older rows an outcome or a rating names"
        return text

    def details(self) -> dict[str, Any]:
        return {"partitions": self.partitions, "rows": self.rows, "kept": self.kept}


def cutoff_day(keep_days: int, now: datetime | None = None) -> date:
    """The first day kept: ``keep_days`` before today (UTC). Refuses fewer than one day."""
    if keep_days < 1:
        raise Invalid(f"--keep-days must be at least 1 (got {keep_days}): 0 would delete today's rows as they arrive")
    return (now or datetime.now(UTC)).astimezone(UTC).date() - timedelta(days=keep_days)


def ensure_partitions(db: Database, now: datetime | None = None) -> list[str]:
    """Make the day partitions from yesterday to ``DAYS_AHEAD`` days ahead that are missing (PostgreSQL; nothing on
    SQLite); the names made. One catalog read when they all exist."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    days = [today + timedelta(days=n) for n in range(-1, DAYS_AHEAD + 1)]
    made = []
    for owner in TABLES.values():
        with write_transaction(db) as connection:
            made += owner.ensure_partitions(connection, days)
    return made


def apply_retention(
    db: Database,
    keep_days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    actor: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Removed]:
    """Remove the rows of ``features`` and ``predictions`` from before ``cutoff_day(keep_days)``, per table: whole
    day partitions first, then the rest in batches (``progress`` hears of each partition and every 100,000 rows).
    Audited as ``admin.retention``; a dry run counts what would go and changes nothing."""
    cutoff = cutoff_day(keep_days, now)
    if dry_run:
        return [_count(db, table, owner, cutoff) for table, owner in TABLES.items()]
    removed: list[Removed] = []
    details: dict[str, Any] = {"keep_days": keep_days, "cutoff": cutoff.isoformat()}
    try:
        for table, owner in TABLES.items():
            removed.append(Removed(table, cutoff))
            _prune(db, owner, removed[-1], progress)
    except Exception as exc:  # what went before it is gone all the same: the audit log says so, and why it stopped
        details["stopped"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise
    finally:
        details |= {r.table: r.details() for r in removed}
        AuditLog(db).record(actor or configured_actor(), "admin.retention", ",".join(TABLES), details)
    return removed


def _count(db: Database, table: str, owner: ModuleType, cutoff: date) -> Removed:
    connection = connection_of(db)
    rows, kept = owner.count_older(connection, cutoff)
    days = owner.partitions_before(connection, cutoff)
    return Removed(table, cutoff, [day_partition(table, day) for day in days], rows, kept)


def _prune(db: Database, owner: ModuleType, removed: Removed, progress: Callable[[str], None]) -> None:
    """Remove the table's old rows, counting them into ``removed`` as they go."""
    table, cutoff = removed.table, removed.cutoff
    for day in owner.partitions_before(connection_of(db), cutoff):
        try:
            with write_transaction(db) as connection:
                rows, kept = owner.drop_partition(connection, day)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            raise TemporarilyUnavailable(
                f"{day_partition(table, day)} was not dropped: the table stayed locked for {LOCK_TIMEOUT} (a long"
                " read?); what went before it is gone, run again for the rest"
            ) from exc
        removed.partitions.append(day_partition(table, day))
        removed.rows += rows - kept
        progress(f"{table}: dropped {day_partition(table, day)} ({rows - kept:,} rows, {kept:,} kept)")
    reported, keys = removed.rows, owner.older_keys(connection_of(db), cutoff, None, BATCH_ROWS)
    while keys:
        with write_transaction(db) as connection:
            removed.rows += owner.delete_older(connection, cutoff, keys)
        keys = owner.older_keys(connection_of(db), cutoff, keys[-1], BATCH_ROWS)
        if removed.rows - reported >= 100_000:
            reported = removed.rows
            progress(f"{table}: {removed.rows:,} rows removed so far")
    removed.kept = owner.count_older(connection_of(db), cutoff)[1]
