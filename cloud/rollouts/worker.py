"""RolloutWorker: advances every running rollout on a timer beside ``iotsphere cloud serve``.

Advancing is idempotent and every transition is a compare-and-set, so the worker and operators calling
``advance`` never take a decision twice. One failing rollout is logged and never stops the others.
"""

from __future__ import annotations

import logging
from collections import Counter

import sqlite_utils

from cloud.config import PASSPHRASE_ENV, CloudConfig, key_passphrase
from cloud.releases import keystore, tuf_repo
from cloud.rollouts import store
from cloud.rollouts.engine import StagedRollouts
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)
ACTOR = "rollout-worker"


class RolloutWorker(PeriodicWorker):
    name = "rollout-worker"
    leader_lock = "rollouts"

    def __init__(self, config: CloudConfig, passphrase: str | None = None, interval: float = 30.0):
        super().__init__(config, interval)
        self.passphrase = passphrase or key_passphrase()
        self.counts: Counter[str] = Counter()

    def ready(self) -> bool:
        """Check the passphrase up front (a wrong one fails here, not at the first stage); idle without one."""
        if not self.passphrase:
            log.warning("no %s: running rollouts advance only through explicit calls", PASSPHRASE_ENV)
            return False
        if tuf_repo.is_initialized(self.config):
            keystore.director_key(self.config.keys_dir, self.passphrase)
        return True

    def step(self, db: sqlite_utils.Database) -> bool:
        self.run_once(StagedRollouts(self.config, db, self.passphrase))
        return False

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
