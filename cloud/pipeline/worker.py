"""The training worker beside the API in ``iotsphere cloud serve``: retraining checks, schedules and queued runs.

One run at a time on its own thread and database connection; a failing run fails alone (``ModelTrainingPipeline``
records why) and the loop goes on. On start, runs left running by a worker process that is gone are failed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cloud.config import CloudConfig
from cloud.pipeline.runs import TrainingRun
from cloud.retraining.service import RetrainingService
from cloud.storage import open_database

log = logging.getLogger(__name__)


def work_once(retraining: RetrainingService, echo: Callable[[str], None] | None = None) -> TrainingRun | None:
    """One step: retraining checks that are due, due schedules (guarded), follow-ups of finished runs, then the
    oldest queued run (returned when one ran)."""
    for decision in retraining.tick():
        if echo:
            what = f"{decision['trigger']} {decision['decision']}"
            echo(f"retraining {decision['model_name']}: {what} — {decision['reason']}")
    return retraining.pipeline.run_next(echo=echo)


class TrainingWorker:
    def __init__(self, config: CloudConfig, poll_seconds: float = 5.0, passphrase: str | None = None) -> None:
        self.config = config
        self.poll_seconds = poll_seconds
        self.passphrase = passphrase
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        db = open_database(self.config.database_path)
        retraining = RetrainingService(db, self.config, self.passphrase)
        for run_id in retraining.pipeline.runs.fail_interrupted():
            log.warning("training run %s was interrupted by a previous worker; marked failed", run_id)
        self._thread = threading.Thread(target=self._run, args=(retraining,), name="training-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the run in progress (if any) finishes, waiting at most ``timeout`` seconds."""
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def _run(self, retraining: RetrainingService) -> None:
        try:
            while not self._stop.is_set():
                try:
                    finished = work_once(retraining)
                except Exception:  # e.g. the database briefly unavailable: log, wait, try again
                    log.exception("training worker step failed")
                    finished = None
                if finished is not None:
                    log.info("training run %s %s", finished.run_id, finished.status.value)
                    continue  # look for the next queued run at once
                self._stop.wait(self.poll_seconds)
        finally:
            retraining.db.conn.close()
