"""RolloutWorker: advances every running rollout on a timer beside ``iotsphere cloud serve``.

Advancing is idempotent and every transition is a compare-and-set, so the worker and operators calling
``advance`` never take a decision twice. One failing rollout is logged and never stops the others.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import Counter

from cloud.config import PASSPHRASE_ENV, CloudConfig
from cloud.releases import keystore, tuf_repo
from cloud.rollouts import store
from cloud.rollouts.engine import StagedRollouts
from cloud.storage import open_database

log = logging.getLogger(__name__)
ACTOR = "rollout-worker"


class RolloutWorker:
    def __init__(self, config: CloudConfig, passphrase: str | None = None, interval: float = 30.0):
        self.config = config
        self.passphrase = passphrase or os.environ.get(PASSPHRASE_ENV)
        self.interval = interval
        self.counts: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Check the passphrase up front (a wrong one fails here, not at the first stage), then run."""
        if not self.passphrase:
            log.warning("no %s: running rollouts advance only through explicit calls", PASSPHRASE_ENV)
            return
        if tuf_repo.is_initialized(self.config):
            keystore.director_key(self.config.keys_dir, self.passphrase)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rollout-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        db = open_database(self.config.database_path)
        try:
            while not self._stop.is_set():
                self.run_once(StagedRollouts(self.config, db, self.passphrase))
                self._stop.wait(self.interval)
        finally:
            db.conn.close()

    def run_once(self, rollouts: StagedRollouts) -> Counter[str]:
        """Advance each running rollout once; count the statuses they end in (and the errors)."""
        done: Counter[str] = Counter()
        try:
            running = store.list_ids(rollouts.db, store.RolloutStatus.RUNNING)
        except Exception:  # the database briefly unavailable: try again next pass
            log.exception("rollout worker: listing rollouts failed")
            running = []
        for rollout_id in running:
            try:
                done[rollouts.advance(rollout_id, actor=ACTOR).status.value] += 1
            except Exception:  # one bad rollout (a key rotated away, a release removed) never stops the others
                done["errors"] += 1
                log.exception("rollout worker: advancing rollout #%s failed", rollout_id)
        self.counts.update(done)
        return done
