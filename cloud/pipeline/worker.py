"""The training worker beside the API in ``iotsphere cloud serve``: retraining checks, schedules and queued runs.

One run at a time on its own thread and database connection (``cloud.workers.PeriodicWorker``); a failing run fails
alone (``ModelTrainingPipeline`` records why) and the loop goes on. On start, runs left running by a worker process
that is gone are failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlite_utils

from cloud.config import CloudConfig
from cloud.pipeline.runs import RunStore, TrainingRun
from cloud.retraining.service import RetrainingService
from cloud.storage import open_database
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)


def work_once(retraining: RetrainingService, echo: Callable[[str], None] | None = None) -> TrainingRun | None:
    """One step: retraining checks that are due, due schedules (guarded), follow-ups of finished runs, then the
    oldest queued run (returned when one ran)."""
    for decision in retraining.tick():
        what = f"{decision['trigger']} {decision['decision']}"
        (echo or log.info)(f"retraining {decision['model_name']}: {what} — {decision['reason']}")
    return retraining.pipeline.run_next(echo=echo)


class TrainingWorker(PeriodicWorker):
    name = "training-worker"

    def __init__(self, config: CloudConfig, poll_seconds: float = 5.0, passphrase: str | None = None) -> None:
        super().__init__(config, poll_seconds)
        self.passphrase = passphrase

    def ready(self) -> bool:
        """Fail the runs a worker process that is gone left running."""
        db = open_database(self.config.database_url)
        try:
            for run_id in RunStore(db).fail_interrupted():
                log.warning("training run %s was interrupted by a previous worker; marked failed", run_id)
        finally:
            db.close()
        return True

    def step(self, db: sqlite_utils.Database) -> bool:
        finished = work_once(RetrainingService(db, self.config, self.passphrase))
        if finished is not None:
            log.info("training run %s %s", finished.run_id, finished.status.value)
        return finished is not None  # a run finished: look for the next queued one at once
