"""The training workers beside the API in ``iotsphere cloud serve``: queued runs, and the retraining jobs.

``TrainingWorker`` executes queued runs, one at a time on its own thread and database connection
(``cloud.workers.PeriodicWorker``); any number of them may run, each claiming the oldest run no other has claimed
(``cloud.data.training.claim_run``). A failing run fails alone (``ModelTrainingPipeline`` records why) and the loop
goes on. On start, runs left running by a worker process of this host that is gone are failed.

``RetrainingJobs`` runs the retraining checks that are due, queues due schedules and follows up finished runs: a
periodic job, so it runs in one process at a time (its leader lock, ``retraining``).
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


#: the leader lock of the retraining checks and schedules (``cloud.data.leader``)
RETRAINING_LOCK = "retraining"


def work_once(
    retraining: RetrainingService, echo: Callable[[str], None] | None = None, jobs: bool = True
) -> TrainingRun | None:
    """One step: with ``jobs`` (this process leads them), retraining checks that are due, due schedules (guarded)
    and follow-ups of finished runs; then the oldest queued run (returned when one ran)."""
    if jobs:
        run_jobs(retraining, echo)
    return retraining.pipeline.run_next(echo=echo)


def run_jobs(retraining: RetrainingService, echo: Callable[[str], None] | None = None) -> None:
    """Retraining checks that are due, due schedules (guarded) and follow-ups of finished runs."""
    for decision in retraining.tick():
        what = f"{decision['trigger']} {decision['decision']}"
        (echo or log.info)(f"retraining {decision['model_name']}: {what} — {decision['reason']}")


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
        finished = work_once(RetrainingService(db, self.config, self.passphrase), jobs=False)
        if finished is not None:
            log.info("training run %s %s", finished.run_id, finished.status.value)
        return finished is not None  # a run finished: look for the next queued one at once


class RetrainingJobs(PeriodicWorker):
    """The retraining checks, schedules and follow-ups, in the one process that holds their leader lock."""

    name = "retraining-jobs"
    leader_lock = RETRAINING_LOCK

    def __init__(self, config: CloudConfig, poll_seconds: float = 5.0, passphrase: str | None = None) -> None:
        super().__init__(config, poll_seconds)
        self.passphrase = passphrase

    def step(self, db: sqlite_utils.Database) -> bool:
        run_jobs(RetrainingService(db, self.config, self.passphrase))
        return False
