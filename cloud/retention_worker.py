"""The periodic job of ``cloud serve`` that keeps day partitions made ahead and, when
``IOTSPHERE_RETENTION_DAYS`` is set, applies retention once a UTC day (``cloud.retention``)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime

import sqlite_utils

from cloud.config import CloudConfig, environment
from cloud.retention import apply_retention, ensure_partitions
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)

#: who the audit log names for the job's retention runs
ACTOR = "jobs:retention"


class RetentionWorker(PeriodicWorker):
    """Every hour: the coming days' partitions (PostgreSQL; ingest writes into the default partition until its
    day's exists), then retention if it is configured and has not run today."""

    name = "retention"
    leader_lock = "retention"

    def __init__(self, config: CloudConfig, keep_days: int | None = None, interval: float = 3600.0) -> None:
        super().__init__(config, interval)
        self.keep_days = environment().retention_days if keep_days is None else keep_days
        self._ran_on: date | None = None

    def step(self, db: sqlite_utils.Database) -> bool:
        made = ensure_partitions(db)
        if made:
            log.info("retention: made partitions %s", ", ".join(made))
        today = datetime.now(UTC).date()
        if self.keep_days and self._ran_on != today:
            for removed in apply_retention(db, self.keep_days, actor=ACTOR):
                log.info("retention: %s", removed.describe(dry_run=False))
            self._ran_on = today
        return False
