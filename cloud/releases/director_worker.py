"""The director publisher: the periodic job that keeps every gateway's desired state delivered, fresh and verifiable.

It directs newly seen gateways to the fleet's desired state, retries gateways that could not be directed, re-issues
documents before they expire, re-signs TUF metadata before it expires (issuing through ``cloud.releases.service``, as
every path that directs gateways does) and sends what is pending (``cloud.releases.publisher``).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import UTC, datetime, timedelta

import sqlite_utils

from cloud.config import PASSPHRASE_ENV, CloudConfig, key_passphrase
from cloud.releases import director, keystore, tuf_repo
from cloud.releases.publisher import PublishError, publish_pending
from cloud.releases.service import ReleaseService
from cloud.workers import PeriodicWorker

log = logging.getLogger(__name__)


class DirectorPublisher(PeriodicWorker):
    """Background worker keeping every gateway's desired state delivered, fresh and verifiable.

    Each pass: direct gateways without a document to the fleet's desired state, re-issue documents
    within half their validity of expiring, send pending documents, and renew TUF metadata past
    half its lifetime. Signing needs the key passphrase (argument or ``IOTSPHERE_KEY_PASSPHRASE``);
    without it the worker only sends what is pending. One failing step never stops the others.
    """

    name = "director-publisher"
    leader_lock = "director-publisher"

    def __init__(
        self,
        config: CloudConfig,
        passphrase: str | None = None,
        interval: float = 30.0,
        validity: timedelta = director.DEFAULT_VALIDITY,
        policy: tuf_repo.ExpiryPolicy | None = None,
    ):
        super().__init__(config, interval)
        self.passphrase = passphrase or key_passphrase()
        self.validity = validity
        self.policy = policy
        self.counts: Counter[str] = Counter()

    def ready(self) -> bool:
        """Check the passphrase up front (a wrong one fails here, not silently later)."""
        if not self.passphrase:
            log.warning("no %s: the director publisher will send pending documents but sign nothing", PASSPHRASE_ENV)
        elif tuf_repo.is_initialized(self.config):
            keystore.director_key(self.config.keys_dir, self.passphrase)
        else:
            log.warning("no TUF repository yet (`iotsphere cloud init`): the director publisher signs once it exists")
        return True

    def step(self, db: sqlite_utils.Database) -> bool:
        self.run_once(db)
        return False

    def run_once(self, db: sqlite_utils.Database, now: datetime | None = None) -> Counter[str]:
        """One pass; returns what it did this time (also added to ``counts``)."""
        now = now or datetime.now(UTC)
        done: Counter[str] = Counter()
        if self.passphrase and tuf_repo.is_initialized(self.config):
            self._step(done, "issued", lambda: self._issue(db, self._new_gateways(db), now, done, "issued"))
            self._step(done, "retried", lambda: self._issue(db, director.failures_due(db, now), now, done, "retried"))
            self._step(done, "renewed", lambda: self._issue(db, self._expiring(db, now), now, done, "renewed"))
            self._step(
                done, "tuf_renewed", lambda: len(tuf_repo.renew_expiring(self.config, self.passphrase, self.policy))
            )
        self._step(done, "published", lambda: len(publish_pending(self.config, db)))
        self.counts.update(done)
        return done

    def _step(self, done: Counter[str], name: str, action) -> None:
        try:
            done[name] += action()
        except PublishError as exc:  # expected while the broker is down: the documents stay pending
            done[f"{name}_errors"] += 1
            log.warning("director publisher: %s", exc)
        except Exception:  # the worker outlives a bad row or a full disk; the error is counted and logged
            done[f"{name}_errors"] += 1
            log.exception("director publisher: %s failed", name)

    def _new_gateways(self, db: sqlite_utils.Database) -> list[str]:
        new = director.gateways_without_document(db) if director.fleet_desired(db) else []
        return _without_pending_retry(db, new)

    def _expiring(self, db: sqlite_utils.Database, now: datetime) -> list[str]:
        """Documents within half their validity of expiring."""
        return _without_pending_retry(db, director.gateways_expiring(db, now + self.validity / 2))

    def _issue(
        self, db: sqlite_utils.Database, gateway_ids: list[str], now: datetime, done: Counter[str], name: str
    ) -> int:
        """Issue to ``gateway_ids``; count (as ``<name>_failed``) and log the gateways that could not be directed."""
        if not gateway_ids:
            return 0
        issued = ReleaseService(self.config, self.passphrase).direct(db, gateway_ids, validity=self.validity, now=now)
        done[f"{name}_failed"] += len(issued.failures)
        for failure in issued.failures:
            log.warning("director publisher: %s not directed: %s", failure.gateway_id, failure.reason)
        return len(issued.documents)


def _without_pending_retry(db: sqlite_utils.Database, gateway_ids: list[str]) -> list[str]:
    """``gateway_ids`` but those with a recorded failure: they wait for their retry (and its backoff)."""
    failed = {failure.gateway_id for failure in director.failures(db)}
    return [gateway_id for gateway_id in gateway_ids if gateway_id not in failed]
